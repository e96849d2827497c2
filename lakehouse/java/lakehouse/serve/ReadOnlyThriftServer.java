package lakehouse.serve;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.ql.metadata.Hive;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.hive.HiveUtils;
import org.apache.spark.sql.hive.thriftserver.HiveThriftServer2;
import org.apache.spark.sql.hive.thriftserver.SparkSQLEnv;

/**
 * Main class of `lakehouse serve-sql` (run by spark-submit): registers the lake's Delta tables in the
 * session catalog, arms {@link ReadOnlyExtension}, then starts Spark's Thrift JDBC/ODBC server
 * (HiveServer2 protocol).
 *
 * Arguments: TABLES_FILE [--hiveconf key=value ...]. TABLES_FILE has one line per table,
 * "layer.table<TAB>location" (written by lakehouse/serve.py); the --hiveconf arguments go to
 * HiveThriftServer2 (bind host, port, transport, authentication). Prints "lakehouse serve-sql: ready"
 * on standard output once the server accepts connections; exits non-zero if it cannot start.
 */
public final class ReadOnlyThriftServer {

    private ReadOnlyThriftServer() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: ReadOnlyThriftServer TABLES_FILE [--hiveconf key=value ...]");
            System.exit(2);
        }
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        SparkSQLEnv.init();
        SparkSession spark = SparkSQLEnv.sparkSession();
        Set<String> databases = new LinkedHashSet<>();
        int tables = 0;
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            String[] parts = line.split("\t", 2);
            String name = parts[0];
            String database = name.substring(0, name.indexOf('.'));
            if (databases.add(database)) {
                spark.sql("CREATE DATABASE IF NOT EXISTS `" + database + "`");
            }
            spark.sql("CREATE TABLE " + quoteName(name) + " USING delta LOCATION '" + parts[1].replace("\\", "\\\\").replace("'", "\\'") + "'");
            tables++;
        }
        ReadOnlyExtension.arm();
        // Parses --hiveconf, reuses the session above (SparkSQLEnv is initialised) and starts the server;
        // it exits the JVM itself when the server cannot start (port taken, bad settings).
        HiveThriftServer2.main(Arrays.copyOfRange(args, 1, args.length));
        warmMetastore();
        System.out.println("lakehouse serve-sql: ready (" + tables + " tables in " + String.join(", ", databases) + ")");
        System.out.flush();
    }

    /**
     * Creates the in-memory Hive metastore that every client session's close opens (Hive's
     * SessionState.close calls Hive.getMSC), so the first client's close does not pay for creating its
     * schema. The URL is the one serve.py sets (spark.hadoop.javax.jdo.option.ConnectionURL), read the
     * way the Thrift server's own Hive configuration is built (HiveUtils.newTemporaryConfiguration).
     */
    private static void warmMetastore() throws Exception {
        HiveConf conf = new HiveConf();
        Map<String, String> settings = scala.jdk.javaapi.CollectionConverters.asJava(HiveUtils.newTemporaryConfiguration(true));
        settings.forEach(conf::set);
        try {
            Hive.getWithoutRegisterFns(conf).getMSC();
        } finally {
            Hive.closeCurrent();
        }
    }

    private static String quoteName(String name) {
        int dot = name.indexOf('.');
        return "`" + name.substring(0, dot) + "`.`" + name.substring(dot + 1) + "`";
    }
}
