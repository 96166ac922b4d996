/**
 * What the gateway needs from the node, as an interface: the service groups
 * (hostnames, public ports, limits), their member instances (state, private
 * address, scale-to-zero policy), a way to wake a standby instance and to put
 * an idle one into standby, and a stream of changes. The node implements it
 * over its lifecycle (node-backend.ts); unit tests implement it over real
 * loopback servers.
 */
import type { SecureContext } from 'node:tls';
import type { InstanceState, ScaleToZero } from '../instances/model.js';
import type { NormalizedService } from '../services/index.js';

export interface GatewayGroup {
  uuid: string;
  /** Lower-case FQDNs routed to this group (Host header, TLS SNI). */
  hostnames: string[];
  services: NormalizedService[];
  /** Concurrent requests/connections per instance before another standby instance is woken. */
  softLimit: number | null;
  /** Concurrent requests/connections per instance above which the gateway refuses at once. */
  hardLimit: number | null;
}

export interface GatewayMember {
  uuid: string;
  /** The group the instance belongs to. */
  group: string;
  state: InstanceState;
  /** Private IP the gateway connects to (at the service's destination port). */
  address: string | null;
  scaleToZero: ScaleToZero | null;
}

export type BackendEvent =
  /** Groups were added, changed or removed: re-read `groups()`. */
  | { type: 'groups' }
  /** A member appeared or changed (state, address, policy). */
  | { type: 'member'; member: GatewayMember }
  /** A member was deleted or left its group. */
  | { type: 'member-gone'; uuid: string };

export interface GatewayBackend {
  groups(): GatewayGroup[];
  members(): GatewayMember[];
  /** Starts a standby instance; resolves once it is `running` (the app may still be binding its port). */
  wake(uuid: string): Promise<void>;
  /** Puts an idle running instance into standby (scale-to-zero). */
  standby(uuid: string): Promise<void>;
  subscribe(listener: (event: BackendEvent) => void): () => void;
}

/** Server certificates by SNI name. */
export interface TlsProvider {
  /** The context for `servername`, or undefined to use the default. */
  contextFor(servername: string): SecureContext | undefined;
  /** Certificate and key served when the client sends no (known) SNI name. */
  defaultCredentials(): { cert: string; key: string };
}
