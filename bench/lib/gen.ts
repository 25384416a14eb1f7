/**
 * The orchestrator's handle on one load-generator process (bench/loadgen.ts): JSON commands on
 * its stdin, JSON answers on its stdout, a time limit on every call.
 *
 * @module
 */
import { type Child, cpuSeconds, spawn } from "./proc.ts";

// deno-lint-ignore no-explicit-any
export type Reply = Record<string, any>;

/** One load-generator subprocess. */
export class Gen {
  readonly child: Child;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters = new Map<number, (r: Reply) => void>();
  #next = 1;

  private constructor(name: string) {
    this.child = spawn(name, Deno.execPath(), ["run", "-A", "bench/loadgen.ts"], {
      stdin: true,
      raiseFdLimit: true,
      onStdout: (line) => {
        if (!line.startsWith("{")) return;
        try {
          const r = JSON.parse(line) as Reply;
          const w = this.#waiters.get(r.id);
          if (w) {
            this.#waiters.delete(r.id);
            w(r);
          }
        } catch { /* not ours */ }
      },
    });
    this.#writer = this.child.proc.stdin.getWriter();
  }

  /** Starts `n` generator processes. */
  static startMany(n: number, prefix = "gen"): Gen[] {
    return Array.from({ length: n }, (_, i) => new Gen(`${prefix}${i + 1}`));
  }

  get pid(): number {
    return this.child.pid;
  }

  /** CPU-seconds this generator has used so far (from /proc). */
  cpu(): number {
    return cpuSeconds(this.pid);
  }

  /** Sends a command; resolves with the answer, rejects on error, exit or timeout. */
  async call(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<Reply> {
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<Reply>();
    this.#waiters.set(id, resolve);
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, cmd, ...args }) + "\n"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const r = await Promise.race([
        promise,
        this.child.exited.then((s) => {
          throw new Error(
            `${this.child.name} exited (${s.code}) during '${cmd}':\n${
              this.child.lines.slice(-10).join("\n")
            }`,
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.child.name}: '${cmd}' took over ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      if (!r.ok) throw new Error(`${this.child.name}: ${cmd} failed: ${r.error}`);
      return r;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(id);
    }
  }

  /** Asks the process to exit; kills it if it does not. */
  async exit(): Promise<void> {
    if (this.child.done) return;
    await Promise.race([
      this.call("exit", {}, 5000).catch(() => {}),
      this.child.exited,
    ]);
    try {
      await this.#writer.close();
    } catch { /* closed */ }
    await this.child.stop(3000);
  }
}

/** Calls the same command on every generator in parallel. */
export function all(
  gens: Gen[],
  cmd: string,
  args: (i: number) => Record<string, unknown>,
  timeoutMs?: number,
): Promise<Reply[]> {
  return Promise.all(gens.map((g, i) => g.call(cmd, args(i), timeoutMs)));
}
