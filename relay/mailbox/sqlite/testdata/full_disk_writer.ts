/// <reference lib="deno.worker" />
// A writer on a disk that is full while `<db>-disk-full` exists: then a commit fails as SQLite's
// does on ENOSPC, unless the reserve file was given back (its space is all the disk has), and
// the disk reports no free bytes (mailbox_test.ts).
import { existsSync } from "node:fs";
import { serveWriter, SqliteWriter, type WriterOptions } from "../writer.ts";

let dbPath = ""; // set before the constructor runs: it already asks for free bytes

const full = () => existsSync(dbPath + "-disk-full");

class FullDiskWriter extends SqliteWriter {
  protected override commit(): void {
    if (full() && existsSync(dbPath + "-reserve")) {
      throw new Error("database or disk is full");
    }
    super.commit();
  }
  protected override freeBytes(): number {
    return full() ? 0 : super.freeBytes();
  }
}

serveWriter(self, (path: string, options: WriterOptions) => {
  dbPath = path;
  return new FullDiskWriter(path, options);
});
