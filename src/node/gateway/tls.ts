/**
 * SNI certificate selection: user certificates first (exact name, then a
 * `*.parent` wildcard), else the node's own wildcard certificate. Contexts are
 * built once per `reload` (certificate changes), never per handshake.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsProvider } from './backend.js';

export interface ServedCertificate {
  hostnames: readonly string[];
  chainPem: string;
  keyPem: string;
}

export class CertificateDirectory implements TlsProvider {
  private exact = new Map<string, SecureContext>();
  private wildcard = new Map<string, SecureContext>();
  private readonly fallback: SecureContext;

  constructor(
    private readonly node: { cert: string; key: string },
    private readonly userCertificates: () => readonly ServedCertificate[] = () => [],
  ) {
    this.fallback = createSecureContext(node);
    this.reload();
  }

  /** Rebuilds the name → context tables from the current user certificates. */
  reload(): void {
    const exact = new Map<string, SecureContext>();
    const wildcard = new Map<string, SecureContext>();
    for (const c of this.userCertificates()) {
      let ctx: SecureContext;
      try {
        ctx = createSecureContext({ cert: c.chainPem, key: c.keyPem });
      } catch {
        continue; // validated at upload; a broken one must not take TLS down for everyone
      }
      for (const h of c.hostnames) {
        const name = h.toLowerCase();
        if (name.startsWith('*.')) {
          if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), ctx);
        } else if (!exact.has(name)) exact.set(name, ctx);
      }
    }
    this.exact = exact;
    this.wildcard = wildcard;
  }

  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const hit = this.exact.get(name);
    if (hit) return hit;
    const dot = name.indexOf('.');
    return (dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined) ?? this.fallback;
  }

  defaultCredentials(): { cert: string; key: string } {
    return this.node;
  }
}
