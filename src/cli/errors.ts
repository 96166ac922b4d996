/**
 * The one place where a failure becomes what the user reads and the exit code.
 * Commands throw typed errors (platform client, registry client, config,
 * usage); `describeFailure` names the real cause — a rejected token says it is
 * the token and where it came from, an unreachable address says so — never a
 * generic "not found".
 *
 * Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication, 4 platform unreachable.
 */
import { PlatformApiError, PlatformAuthError, PlatformProtocolError, PlatformUnreachableError } from '../client/index.js';
import { AuthError as RegistryAuthError, RegistryClientError, RegistryError as RegistryHttpError, TransportError } from '../client/index.js';
import { UsageError, UserError } from '../util/index.js';
import type { Settings } from './config.js';

export const EXIT_AUTH = 3;
export const EXIT_UNREACHABLE = 4;

function tokenHint(settings: Settings | undefined): string {
  if (!settings || settings.token === undefined) return 'no API token is set: set UKC_TOKEN or run `unikraft login --token TOKEN`';
  return `the token came from ${settings.tokenSource}; set UKC_TOKEN or run \`unikraft login --token TOKEN\``;
}

/** Maps any thrown value to the error runCommandLine prints; unknown errors pass through (internal error). */
export function describeFailure(err: unknown, settings: Settings | undefined): unknown {
  if (err instanceof UsageError || err instanceof UserError) return err;
  if (err instanceof PlatformAuthError) return new UserError(`${err.message}: ${tokenHint(settings)}`, EXIT_AUTH);
  if (err instanceof PlatformUnreachableError) {
    return new UserError(`cannot reach the platform at ${err.url} (${err.reason}): is ukcd running? (\`ukcd dev\` starts one)`, EXIT_UNREACHABLE);
  }
  if (err instanceof PlatformApiError) return new UserError(err.message);
  if (err instanceof PlatformProtocolError) return new UserError(`the platform answered unexpectedly: ${err.message}`);
  if (err instanceof RegistryHttpError && (err.status === 401 || err.status === 403)) {
    return new UserError(`the registry refused the API token (${err.message}): ${tokenHint(settings)}`, EXIT_AUTH);
  }
  if (err instanceof RegistryAuthError) return new UserError(`registry authentication failed (${err.message}): ${tokenHint(settings)}`, EXIT_AUTH);
  if (err instanceof TransportError) return new UserError(`cannot reach the registry: ${err.message}`, EXIT_UNREACHABLE);
  if (err instanceof RegistryClientError) return new UserError(err.message);
  return err;
}
