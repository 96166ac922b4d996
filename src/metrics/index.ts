// Public face of src/metrics: each role's Prometheus registry and its authenticated /metrics endpoint.
export { NodeMetrics, RoleMetrics, type NodeMetricSources } from './metrics.js';
export { directoryBytes } from './du.js';
export { isMetricsRequest, METRICS_PATH, rootTokenAccess, serveMetrics, type MetricsAccess, type MetricsAccessAnswer } from './endpoint.js';
