/**
 * Listening for HTTP, with the failures a person starting a relay can fix explained in their
 * terms: which port or address, and which flag changes it.
 *
 * @module
 */

/** The relay could not listen; the message says why and which setting to change. */
export class ListenError extends Error {
  /** Wraps the runtime's error `cause`. */
  constructor(message: string, options: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
  }
}

/** Why listening on `hostname:port` failed, in words; `undefined` for an error to pass on. */
export function explainListenError(
  err: unknown,
  { hostname, port }: { hostname: string; port: number },
): string | undefined {
  if (err instanceof Deno.errors.AddrInUse) {
    return `port ${port} on ${hostname} is already in use (another relay?): stop that process, ` +
      "or choose another port with --port (or RELAY_PORT)";
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return `no permission to listen on port ${port}` +
      (port < 1024 ? " (ports below 1024 need privileges)" : "") +
      ": choose another port with --port (or RELAY_PORT)";
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return `cannot listen on ${hostname}: this machine has no such address; ` +
      "choose another with --host (or RELAY_HOST), e.g. 127.0.0.1 or 0.0.0.0";
  }
  return undefined;
}

/**
 * `Deno.serve`, except that a failure to listen is thrown as a {@linkcode ListenError} naming
 * the port or address and the flag that sets it.
 */
export function serveOrExplain(
  options: Deno.ServeTcpOptions & { hostname: string; port: number },
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve(options, handler);
  } catch (err) {
    const message = explainListenError(err, options);
    if (message === undefined) throw err;
    throw new ListenError(message, { cause: err });
  }
}
