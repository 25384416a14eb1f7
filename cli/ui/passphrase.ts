/**
 * Getting the passphrase that protects an identity: from `CHAT_PASSPHRASE` when it is set, else
 * by asking on the terminal with echo off (raw mode: every key arrives as a byte, nothing is
 * shown, Ctrl-C cancels). Without a terminal and without the variable, commands fail with a
 * message that says what to set; they never hang waiting for a pipe.
 *
 * @module
 */
import type { KeyPair } from "@chat-p2p/protocol";
import { type Context, err, warn } from "../context.ts";
import { CliError } from "../errors.ts";
import { type ProfileStore, WrongPassphraseError } from "@chat-p2p/client";

/** Environment variable read for the passphrase (scripts, pipes, CI). */
export const PASSPHRASE_ENV = "CHAT_PASSPHRASE";

/** Environment variable read for the new passphrase of `chat-p2p passphrase` (scripts). */
export const NEW_PASSPHRASE_ENV = "CHAT_NEW_PASSPHRASE";

/** Attempts allowed at the terminal before giving up. */
const TERMINAL_ATTEMPTS = 3;

/** Below this many characters `init` warns that the passphrase is weak. */
const SHORT_PASSPHRASE = 8;

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const DELETE = 0x7f;
const CTRL_U = 0x15;
const ESC = 0x1b;

function passphraseFromEnv(ctx: Context, name = PASSPHRASE_ENV): string | undefined {
  const v = ctx.io.env(name);
  return v === undefined || v === "" ? undefined : v;
}

function canPrompt(ctx: Context): boolean {
  const stdin = ctx.io.stdin;
  return stdin.isTerminal && stdin.setRaw !== undefined && stdin.read !== undefined;
}

/** Drops the last UTF-8 character of `bytes` (backspace). */
function dropLastChar(bytes: number[]): void {
  while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
  bytes.pop();
}

/**
 * Writes `prompt` on stderr and reads one line from the terminal with echo off. Enter ends it;
 * Backspace and Ctrl-U edit it; Ctrl-C (or Ctrl-D on an empty line) cancels with a CliError.
 * Raw mode is always switched off again.
 */
export async function readHidden(ctx: Context, prompt: string): Promise<string> {
  const stdin = ctx.io.stdin;
  if (!canPrompt(ctx)) throw new CliError("cannot ask for a passphrase: stdin is not a terminal");
  const typed: number[] = [];
  const buf = new Uint8Array(256);
  // Escape sequences (arrow keys, function keys) are skipped: "esc" after ESC, "csi" inside
  // ESC [ ... or ESC O ... until its final byte.
  let escape: "none" | "esc" | "csi" = "none";
  // Raw mode first, then the prompt: nothing typed after the prompt is echoed.
  stdin.setRaw!(true);
  try {
    ctx.io.stderr.write(prompt);
    let done = false;
    while (!done) {
      const n = await stdin.read!(buf);
      if (n === null) {
        if (typed.length === 0) throw new CliError("passphrase entry cancelled");
        break;
      }
      for (let i = 0; i < n && !done; i++) {
        const b = buf[i];
        if (b === CTRL_C) throw new CliError("passphrase entry cancelled");
        if (escape === "esc") {
          escape = b === 0x5b || b === 0x4f ? "csi" : "none";
          continue;
        }
        if (escape === "csi") {
          if (b >= 0x40 && b <= 0x7e) escape = "none";
          continue;
        }
        if (b === 0x0d || b === 0x0a) done = true;
        else if (b === CTRL_D) {
          if (typed.length === 0) throw new CliError("passphrase entry cancelled");
        } else if (b === BACKSPACE || b === DELETE) dropLastChar(typed);
        else if (b === CTRL_U) typed.length = 0;
        else if (b === ESC) escape = "esc";
        else if (b >= 0x20) typed.push(b);
      }
    }
  } finally {
    try {
      stdin.setRaw!(false);
    } finally {
      ctx.io.stderr.write("\n");
    }
  }
  const text = new TextDecoder().decode(new Uint8Array(typed));
  typed.fill(0);
  buf.fill(0);
  return text;
}

/**
 * A new passphrase (`init --passphrase`, `passphrase`): the environment variable `envName` if set
 * (`CHAT_PASSPHRASE` for init), else asked twice on the terminal. Throws a CliError when it is
 * empty, the two entries differ, or there is no way to get one (`what` names the option or
 * command in that message).
 */
export async function askNewPassphrase(
  ctx: Context,
  profile: string,
  envName = PASSPHRASE_ENV,
  what = "--passphrase",
): Promise<string> {
  let passphrase = passphraseFromEnv(ctx, envName);
  if (passphrase === undefined) {
    if (!canPrompt(ctx)) {
      throw new CliError(`${what}: stdin is not a terminal, so put the passphrase in ${envName}`);
    }
    passphrase = await readHidden(
      ctx,
      `New passphrase for profile ${profile} (not shown as you type): `,
    );
    if (passphrase === "") throw new CliError("the passphrase is empty; nothing was changed");
    const again = await readHidden(ctx, "Type it again to confirm: ");
    if (again !== passphrase) {
      throw new CliError("the two passphrases do not match; nothing was changed");
    }
  }
  if ([...passphrase].length < SHORT_PASSPHRASE) {
    warn(
      ctx,
      `the passphrase is short (under ${SHORT_PASSPHRASE} characters); it is all that protects ` +
        "your key if someone copies identity.json",
    );
  }
  return passphrase;
}

/**
 * The identity's key pair, unlocked: as stored when it has no passphrase; else with
 * `CHAT_PASSPHRASE`, or asked on the terminal (up to three tries). A wrong passphrase is a
 * CliError "wrong passphrase for profile X".
 */
export async function unlockIdentity(ctx: Context, store: ProfileStore): Promise<KeyPair> {
  const mine = unlocked.get(ctx) ?? new WeakMap<ProfileStore, KeyPair>();
  unlocked.set(ctx, mine);
  const done = mine.get(store);
  if (done) return done;
  const kp = await askAndLoad(ctx, store);
  mine.set(store, kp);
  return kp;
}

/** Identities already unlocked, per command run and store: a command asks once. */
const unlocked = new WeakMap<Context, WeakMap<ProfileStore, KeyPair>>();

async function askAndLoad(ctx: Context, store: ProfileStore): Promise<KeyPair> {
  const info = store.readIdentity();
  if (!info.encrypted) return await store.loadIdentity();
  const fromEnv = passphraseFromEnv(ctx);
  if (fromEnv !== undefined) return await store.loadIdentity(fromEnv);
  if (!canPrompt(ctx)) {
    throw new CliError(
      `the identity of profile ${store.profile} is protected by a passphrase and stdin is not ` +
        `a terminal: set ${PASSPHRASE_ENV}`,
    );
  }
  for (let attempt = 1;; attempt++) {
    const passphrase = await readHidden(ctx, `Passphrase for profile ${store.profile}: `);
    try {
      return await store.loadIdentity(passphrase);
    } catch (e) {
      if (!(e instanceof WrongPassphraseError) || attempt >= TERMINAL_ATTEMPTS) throw e;
      err(ctx, "wrong passphrase, try again");
    }
  }
}

/**
 * Makes the profile's files readable for a command that only reads or writes them (history,
 * contacts, requests): with a passphrase they are encrypted at rest, so it is asked for (or
 * taken from `CHAT_PASSPHRASE`) as {@linkcode unlockIdentity} does; without one, nothing is
 * asked.
 */
export async function unlockFiles(ctx: Context, store: ProfileStore): Promise<void> {
  if (store.isProtected()) await unlockIdentity(ctx, store);
}
