/**
 * The daemons' logger: one JSON line per event (pino), written to a stream the
 * role is given (stderr by default, so stdout keeps the human status lines
 * tests and operators wait for). Each role builds one logger at start and
 * passes it down in its options; nothing reads a process-wide logger.
 *
 * Line shape (pino's): {"level":30,"time":"2026-…Z","role":"registry","msg":"…", …}
 * with `level` written as its name ("info", "error") so `jq 'select(.level=="error")'` works.
 */
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Levels an operator may choose, most verbose first; `silent` writes nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export interface LoggerOptions {
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** Where lines go (anything with `write(string)`); default: stderr. */
  destination?: DestinationStream | NodeJS.WritableStream;
  /** Fields on every line (e.g. `{ role: 'node' }`). */
  base?: Record<string, string>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = (options.destination ?? process.stderr) as DestinationStream;
  return pino(
    {
      level: options.level ?? 'info',
      base: { ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // `err` carries name, message and stack; `cause` chains are followed by the serializer.
      serializers: { err: stdSerializers.err },
    },
    destination,
  );
}

/** A logger that writes nothing: the default of library entry points used in-process (tests, embedding). */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent' });
}
