/**
 * SNI certificate selection, per owner: a user certificate is served only for
 * a domain that a service group of the certificate's owner holds (the
 * certificate the domain names, else one of the owner's that covers it: exact
 * name first, then a `*.parent` wildcard). Every other name — a domain of
 * another account, an unknown name, a platform name no user certificate of its
 * owner covers — gets the node's own certificate. So an upload can never take
 * over another tenant's domain or the node's zone, whatever names it carries.
 * Contexts are built once per `reload` (certificate or domain changes), never
 * per handshake.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsProvider } from './backend.js';
import { hostnameMatches } from '../services/index.js';

export interface ServedCertificate {
  uuid: string;
  /** The account that uploaded it. */
  owner: string;
  hostnames: readonly string[];
  chainPem: string;
  keyPem: string;
}

/** A domain a service group holds. */
export interface ServedDomain {
  fqdn: string;
  /** The group's owner. */
  owner: string;
  /** The certificate the domain names, if any. */
  certificate?: string;
}

export class CertificateDirectory implements TlsProvider {
  private byDomain = new Map<string, SecureContext>();
  private readonly fallback: SecureContext;

  constructor(
    private readonly node: { cert: string; key: string },
    private readonly userCertificates: () => readonly ServedCertificate[] = () => [],
    private readonly domains: () => readonly ServedDomain[] = () => [],
  ) {
    this.fallback = createSecureContext(node);
    this.reload();
  }

  /** Rebuilds the domain → context table from the current certificates and domains. */
  reload(): void {
    const certs = this.userCertificates();
    const contexts = new Map<string, SecureContext | null>();
    const contextOf = (c: ServedCertificate): SecureContext | null => {
      let ctx = contexts.get(c.uuid);
      if (ctx === undefined) {
        try {
          ctx = createSecureContext({ cert: c.chainPem, key: c.keyPem });
        } catch {
          ctx = null; // validated at upload; a broken one must not take TLS down for everyone
        }
        contexts.set(c.uuid, ctx);
      }
      return ctx;
    };
    const byDomain = new Map<string, SecureContext>();
    for (const d of this.domains()) {
      const fqdn = d.fqdn.toLowerCase();
      const own = certs.filter((c) => c.owner === d.owner && c.hostnames.some((h) => hostnameMatches(h, fqdn)));
      const named = d.certificate !== undefined ? own.find((c) => c.uuid === d.certificate) : undefined;
      const exact = own.find((c) => c.hostnames.some((h) => h.toLowerCase() === fqdn));
      const choice = [named, exact, ...own].find((c) => c !== undefined && contextOf(c) !== null);
      if (choice) byDomain.set(fqdn, contextOf(choice) as SecureContext);
    }
    this.byDomain = byDomain;
  }

  contextFor(servername: string): SecureContext | undefined {
    return this.byDomain.get(servername.toLowerCase().replace(/\.$/, '')) ?? this.fallback;
  }

  defaultCredentials(): { cert: string; key: string } {
    return this.node;
  }
}
