/** Public face of src/node/gateway. */
export { Gateway, GatewayListenError, DEFAULT_GATEWAY_LIMITS, type GatewayLimits, type GatewayObserver, type GatewayOptions, type ListenAddress } from './gateway.js';
export type { GatewayBackend, GatewayGroup, GatewayMember, BackendEvent, TlsProvider } from './backend.js';
export { CertificateDirectory, type ServedCertificate, type ServedDomain } from './tls.js';
export { NodeGatewayBackend, groupOf } from './node-backend.js';
export { parsePortMap, PortMapError } from './port-map.js';
