// The logger of a `ukcd` role: built once per role at start from its level setting.
import { UsageError } from '../util/index.js';
import { createLogger, isLogLevel, LOG_LEVELS, type Logger } from './logger.js';

/** One role's logger at `level` (validated: a bad level is a usage error), writing to `stream`. */
export function roleLogger(role: string, level: string, stream: NodeJS.WritableStream): Logger {
  if (!isLogLevel(level)) throw new UsageError(`invalid log level "${level}": one of ${LOG_LEVELS.join(', ')}`);
  return createLogger({ level, destination: stream, base: { role } });
}

/** `--log-level LEVEL` on every role (else UKC_LOG_LEVEL, else info). */
export const LOG_OPTIONS = {
  'log-level': { type: 'string', value: 'LEVEL', help: `lowest log level written as JSON lines on stderr: ${LOG_LEVELS.join('|')} (default info; env UKC_LOG_LEVEL)` },
} as const;

/** The level a role runs at: the flag, else the environment, else info. */
export function logLevelOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.UKC_LOG_LEVEL ?? 'info';
}
