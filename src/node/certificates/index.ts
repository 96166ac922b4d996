/** Public face of src/node/certificates: the node's generated CA + wildcard, and user certificates. */
export { ensureNodeTls, type NodeTlsMaterial, type NodeTlsOptions } from './ca.js';
export { CertificateStore, type CertificateRecord } from './store.js';
export { CertificateService, DEFAULT_CERTIFICATE_LIMITS, certificateHostnames, type CertificateLimits } from './service.js';
export { certificateRoutes } from './routes.js';
