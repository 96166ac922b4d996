// Public face of src/log: the daemons' JSON-line logger and per-request logging.
export { createLogger, isLogLevel, LOG_LEVELS, silentLogger, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export {
  currentRequestId,
  reportInternalError,
  REQUEST_ID_HEADER,
  REQUEST_ID_PATTERN,
  requestIdFrom,
  requestLogger,
  setRouteTemplate,
  withRequestLogging,
  type FinishedRequest,
  type RequestLoggingOptions,
} from './http.js';
export { LOG_OPTIONS, logLevelOf, roleLogger } from './daemon.js';
