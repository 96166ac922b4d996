/**
 * Public face of src/api: the v1 framework shared by the node (src/node) and the
 * control plane (src/controlplane). Routes are data (`Route`), the envelope,
 * the errno table, validation and the two dialects' parameters (selectors,
 * paging, updates as `{prop, op, value}` triples) live here; contract operations
 * an API does not offer are `unsupportedRoute`s (EOPNOTSUPP, 501).
 */
export * from './errors.js';
export * from './router.js';
export * from './query.js';
export * as v from './validate.js';
export { ValidationError } from './validate.js';
export * from './update.js';
