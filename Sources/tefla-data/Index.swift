import ArgumentParser
import Learner

/// `tefla-data index`: writes a record index beside each shard (DALI's `tfrecord2idx` format).
struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write SHARD.idx beside each shard: one 'offset size' line per record (DALI's tfrecord2idx format).",
        discussion: """
            The readers use an index when it is there (record counts without reading the shard) and
            refuse one that no longer matches its shard. Compressed shards have no byte offsets to
            index; they are named and left out (exit status 1).
            """)

    @Argument(help: "TFRecord files, directories of shards or glob patterns.")
    var sources: [String]

    func run() throws {
        var written = 0, records = 0, refused = 0
        try reportingErrors {
            for source in sources {
                for shard in try recordFiles(source) {
                    do {
                        let index = try RecordIndex.build(shard: shard)
                        try index.write(beside: shard)
                        written += 1
                        records += index.count
                    } catch let error as DataError {
                        printError("tefla-data: error: \(error)")
                        refused += 1
                    }
                }
            }
        }
        print(
            "index: \(written) index file\(written == 1 ? "" : "s") written, \(records) records"
                + (refused > 0 ? "; \(refused) shard(s) not indexed" : ""))
        if refused > 0 { throw ExitCode.failure }
    }
}
