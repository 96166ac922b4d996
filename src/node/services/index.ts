/** Public face of src/node/services: service groups; the §6 port rules come from src/client (the API's vocabulary, shared with the CLI). */
export {
  HANDLERS,
  normalizeService,
  parsePortShorthand,
  parsePortShorthands,
  portMode,
  PortSpecError,
  serviceRulesViolation,
  type Handler,
  type NormalizedService,
  type PortMode,
  type ServiceSpec,
} from '../../client/index.js';
export { generateServiceName, GENERATED_SERVICE_NAME, isHostname, isPlatformDomain, serviceFqdn } from './names.js';
export { ServiceGroupStore, type ServiceGroupRecord, type DomainRecord } from './store.js';
export {
  ServiceGroupService,
  DEFAULT_SERVICE_LIMITS,
  hostnameMatches,
  type ServiceLimits,
  type CertificateLookup,
  type CreateServiceRequest,
} from './service.js';
export { serviceRoutes } from './routes.js';
export { perItemRoutes, selectorFromPath, type Selector, type Collection } from './crud-routes.js';
