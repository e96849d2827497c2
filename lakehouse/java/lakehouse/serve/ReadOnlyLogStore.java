package lakehouse.serve;

import java.io.IOException;
import java.util.Iterator;

import io.delta.storage.HadoopFileSystemLogStore;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

/**
 * The Delta log store of `lakehouse serve-sql` for the lake's storage scheme
 * (spark.delta.logStore.&lt;scheme&gt;.impl): it reads and lists `_delta_log` like Delta's own Hadoop
 * log stores and refuses every commit. A second line behind {@link ReadOnlyExtension}: should a
 * write ever get past the plan check, no Delta table of the lake gets a new version.
 */
public final class ReadOnlyLogStore extends HadoopFileSystemLogStore {

    public ReadOnlyLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf) throws IOException {
        throw new IOException("lakehouse serve-sql is read-only: Delta commit to " + path + " refused");
    }

    @Override
    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        return true;
    }
}
