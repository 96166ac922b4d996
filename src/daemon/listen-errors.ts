/**
 * A listener that could not bind, said as the user can act on it: which address, and which
 * flag moves it. One place for every role (`ukcd dev`, `ukcd node`); anything else passes through.
 */
import { GatewayListenError } from '../node/index.js';
import { UserError } from '../util/index.js';

export interface ListenFlags {
  /** The flag that moves the role's own API listener (`--listen`, `--node-port`, ...). */
  api: string;
  /** What moves the gateway's public ports, or turns it off. */
  gateway?: string;
}

export function listenFailure(err: unknown, flags: ListenFlags): unknown {
  if (err instanceof GatewayListenError) {
    return new UserError(`gateway: ${err.message}: another program holds the port; ${flags.gateway ?? 'move the gateway or run without it'}`);
  }
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const text = typeof e?.message === 'string' ? e.message : '';
  if (e?.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(text)) {
    return new UserError(`${text.replace(/^listen /, '')}: another program holds the port; pick another with ${flags.api}`);
  }
  return err;
}
