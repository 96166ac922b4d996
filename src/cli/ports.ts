/**
 * `-p PUBLIC:DEST[/handlers]` for `run` and `services create`: the platform's
 * own shorthand parser (src/client/service-rules.ts, §6 rules: `443:8080` is
 * `443:8080/http+tls` plus `80:443/http+redirect`), with its errors as usage errors.
 */
import { UsageError } from '../util/index.js';
import { parsePortShorthands, PortSpecError, type NormalizedService } from '../client/index.js';

export function parsePortSpecs(list: string[]): NormalizedService[] {
  try {
    return parsePortShorthands(list);
  } catch (err) {
    if (err instanceof PortSpecError) throw new UsageError(`-p: ${err.message}`);
    throw err;
  }
}
