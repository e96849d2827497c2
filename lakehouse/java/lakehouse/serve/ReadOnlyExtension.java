package lakehouse.serve;

import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.parser.ParameterContext;
import org.apache.spark.sql.catalyst.parser.ParseException;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

import scala.Function1;
import scala.collection.Iterator;
import scala.runtime.BoxedUnit;

/**
 * Spark SQL extension of `lakehouse serve-sql`: once armed, every statement's analysed plan must be a
 * query or one of a fixed list of metadata commands (SHOW, DESCRIBE, EXPLAIN, SET, USE); anything else
 * (INSERT, DELETE, UPDATE, MERGE, CREATE, DROP, ALTER, OPTIMIZE, VACUUM, CACHE, ADD JAR, CREATE FUNCTION,
 * any other command, and the reflect/java_method functions) is refused during analysis, before anything
 * runs. It is an allow-list: a command this list does not know is refused, and so is any plan node
 * that is a command, is named like one (*Command, *Statement: Delta's RESTORE and CLONE are such
 * statements until after analysis) or is a known writer.
 *
 * Enabled with spark.sql.extensions=lakehouse.serve.ReadOnlyExtension; armed by {@link ReadOnlyThriftServer}
 * after it has registered the lake's tables (so the registration itself is not refused).
 */
public final class ReadOnlyExtension implements Function1<SparkSessionExtensions, BoxedUnit> {

    static final AtomicBoolean ARMED = new AtomicBoolean(false);

    /** Root plan nodes that only read metadata or session settings (v2 logical names and v1 commands). */
    static final Set<String> ALLOWED_ROOTS = Set.of(
        "ShowTables", "ShowTablesCommand", "ShowTablesExtended", "ShowTableExtended",
        "ShowViews", "ShowViewsCommand", "ShowNamespaces", "ShowNamespacesCommand",
        "ShowColumns", "ShowColumnsCommand", "ShowFunctions", "ShowFunctionsCommand",
        "ShowCreateTable", "ShowCreateTableCommand", "ShowCreateTableAsSerdeCommand",
        "ShowTableProperties", "ShowTablePropertiesCommand", "ShowPartitions", "ShowPartitionsCommand",
        "ShowCatalogs", "ShowCatalogsCommand", "ShowCurrentNamespace", "ShowCurrentNamespaceCommand",
        "DescribeRelation", "DescribeTableCommand", "DescribeColumn", "DescribeColumnCommand",
        "DescribeNamespace", "DescribeDatabaseCommand", "DescribeFunction", "DescribeFunctionCommand",
        "DescribeQueryCommand", "DescribeDeltaDetailCommand", "DescribeDeltaHistory",
        "DescribeDeltaHistoryCommand", "ExplainCommand",
        "SetCommand", "ResetCommand", "SetCatalogAndNamespace", "SetNamespaceCommand", "SetCatalogCommand");

    /**
     * Plan nodes that write but are not Spark `Command`s when the check runs (Delta's statements are
     * turned into commands after analysis): refused by name, as is any node named *Command or *Statement.
     */
    static final Set<String> WRITERS = Set.of(
        "RestoreTableStatement", "CloneTableStatement", "DeltaDelete", "DeltaUpdateTable", "DeltaMergeInto",
        "DeltaReorgTable", "InsertIntoStatement", "WriteToStream");

    /** Thrown for a refused statement; the Thrift server returns its message to the client. */
    public static final class ReadOnlyViolation extends RuntimeException {
        ReadOnlyViolation(String what) {
            super("lakehouse serve-sql is read-only: " + what + " refused (only queries, SHOW, DESCRIBE, EXPLAIN, SET and USE run here)");
        }
    }

    /**
     * Statements that Delta carries out while the plan is analysed, before check rules run
     * (RESTORE: Delta's analysis rule runs the command and leaves an empty relation): refused as
     * soon as they are parsed, by {@link ReadOnlyParser}.
     */
    static final Set<String> RUN_DURING_ANALYSIS = Set.of("RestoreTableStatement");

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectParser((session, delegate) -> new ReadOnlyParser(delegate));
        extensions.injectCheckRule(session -> plan -> {
            check(plan);
            return BoxedUnit.UNIT;
        });
        return BoxedUnit.UNIT;
    }

    /** The session's parser (Delta's, over Spark's), refusing {@link #RUN_DURING_ANALYSIS} statements. */
    static final class ReadOnlyParser implements ParserInterface {
        private final ParserInterface delegate;

        ReadOnlyParser(ParserInterface delegate) {
            this.delegate = delegate;
        }

        private static LogicalPlan checked(LogicalPlan plan) {
            if (ARMED.get()) {
                String found = find(plan);
                if (found != null) {
                    throw new ReadOnlyViolation(found);
                }
            }
            return plan;
        }

        private static String find(LogicalPlan node) {
            if (RUN_DURING_ANALYSIS.contains(node.getClass().getSimpleName())) {
                return node.nodeName();
            }
            for (Iterator<LogicalPlan> it = node.children().iterator(); it.hasNext(); ) {
                String found = find(it.next());
                if (found != null) {
                    return found;
                }
            }
            return null;
        }

        @Override
        public LogicalPlan parsePlan(String sql) throws ParseException {
            return checked(delegate.parsePlan(sql));
        }

        @Override
        public LogicalPlan parsePlanWithParameters(String sql, ParameterContext parameters) throws ParseException {
            return checked(delegate.parsePlanWithParameters(sql, parameters));
        }

        @Override
        public LogicalPlan parseQuery(String sql) throws ParseException {
            return checked(delegate.parseQuery(sql));
        }

        @Override
        public Expression parseExpression(String sql) throws ParseException {
            return delegate.parseExpression(sql);
        }

        @Override
        public TableIdentifier parseTableIdentifier(String sql) throws ParseException {
            return delegate.parseTableIdentifier(sql);
        }

        @Override
        public FunctionIdentifier parseFunctionIdentifier(String sql) throws ParseException {
            return delegate.parseFunctionIdentifier(sql);
        }

        @Override
        public scala.collection.immutable.Seq<String> parseMultipartIdentifier(String sql) throws ParseException {
            return delegate.parseMultipartIdentifier(sql);
        }

        @Override
        public StructType parseRoutineParam(String sql) throws ParseException {
            return delegate.parseRoutineParam(sql);
        }

        @Override
        public StructType parseTableSchema(String sql) throws ParseException {
            return delegate.parseTableSchema(sql);
        }

        @Override
        public DataType parseDataType(String sql) throws ParseException {
            return delegate.parseDataType(sql);
        }
    }

    /** Arm the check for every session of this JVM (one way: it cannot be disarmed). */
    public static void arm() {
        ARMED.set(true);
    }

    static void check(LogicalPlan plan) {
        if (!ARMED.get()) {
            return;
        }
        if (ALLOWED_ROOTS.contains(plan.getClass().getSimpleName())) {
            return;
        }
        String refused = firstRefused(plan);
        if (refused != null) {
            throw new ReadOnlyViolation(refused);
        }
    }

    /** The first node (children and subqueries included) that is a command or calls Java by reflection. */
    private static String firstRefused(LogicalPlan node) {
        String name = node.getClass().getSimpleName();
        if (node instanceof Command || WRITERS.contains(name) || name.endsWith("Command") || name.endsWith("Statement")) {
            return node.nodeName();
        }
        for (Iterator<Expression> it = node.expressions().iterator(); it.hasNext(); ) {
            if (callsReflection(it.next())) {
                return "reflect/java_method";
            }
        }
        for (Iterator<LogicalPlan> it = node.children().iterator(); it.hasNext(); ) {
            String found = firstRefused(it.next());
            if (found != null) {
                return found;
            }
        }
        for (Iterator<LogicalPlan> it = node.subqueries().iterator(); it.hasNext(); ) {
            String found = firstRefused(it.next());
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    private static boolean callsReflection(Expression e) {
        if (e.getClass().getSimpleName().equals("CallMethodViaReflection")) {
            return true;
        }
        for (Iterator<Expression> it = e.children().iterator(); it.hasNext(); ) {
            if (callsReflection(it.next())) {
                return true;
            }
        }
        return false;
    }
}
