/**
 * One relay per data directory. Two relays on one SQLite store would hand out the same sequence
 * numbers (seen: `UNIQUE constraint failed: envelopes.mailbox, envelopes.seq` on a later write),
 * so a relay holds `<data-dir>/relay.lock` with the operating system's exclusive advisory lock for
 * as long as it runs, and a second one refuses to start. The OS drops the lock when the process
 * ends, however it ends, so a crash never leaves a stale lock behind; the file itself stays and
 * only says which process holds it.
 *
 * @module
 */
import { join } from "node:path";

/** The lock file's name inside the data directory. */
export const LOCK_FILE = "relay.lock";

/** Another running relay holds the data directory. */
export class DataDirInUseError extends Error {
  /** Creates the error for `dir`, naming the holder when its lock file says who it is. */
  constructor(readonly dir: string, holder: string | undefined) {
    super(
      `data directory ${dir} is in use by another relay${holder ? ` (${holder})` : ""}: ` +
        "stop that relay, or give this one its own --data-dir (or RELAY_DATA_DIR)",
    );
    this.name = "DataDirInUseError";
  }
}

/** An exclusive hold on a relay data directory; {@linkcode DataDirLock.release} lets it go. */
export class DataDirLock {
  #file: Deno.FsFile | undefined;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes `dir` (creating it, 0700, if needed) or throws {@linkcode DataDirInUseError} at once
   * when another relay, in this process or another, holds it.
   */
  static async acquire(dir: string): Promise<DataDirLock> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, LOCK_FILE);
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    let locked = false;
    try {
      locked = await file.tryLock(true);
      if (!locked) throw new DataDirInUseError(dir, await holderOf(path));
      await file.truncate();
      const holder = { pid: Deno.pid, started_at: new Date().toISOString() };
      await file.write(new TextEncoder().encode(JSON.stringify(holder) + "\n"));
      return new DataDirLock(file);
    } catch (err) {
      if (locked) await file.unlock().catch(() => {});
      file.close();
      throw err;
    }
  }

  /** Lets the directory go (idempotent). The lock file stays. */
  release(): void {
    if (!this.#file) return;
    this.#file.unlockSync();
    this.#file.close();
    this.#file = undefined;
  }
}

/** "pid 1234, since 2026-11-30T08:00:00.000Z" from a holder's lock file, if it is readable. */
async function holderOf(path: string): Promise<string | undefined> {
  try {
    const { pid, started_at } = JSON.parse(await Deno.readTextFile(path));
    return Number.isInteger(pid) ? `pid ${pid}, since ${started_at}` : undefined;
  } catch {
    return undefined; // empty (the holder is still writing it) or damaged: say less
  }
}
