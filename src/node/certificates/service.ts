/**
 * `/v1/certificates`: user certificates for custom domains. A certificate is
 * checked before it is stored: the chain parses as PEM X.509, the private key
 * parses and belongs to the first certificate, it is currently valid, and the
 * optional `cn` is one of the names it covers. A certificate used by a
 * service group's domain cannot be deleted (EBUSY).
 */
import { randomUUID, X509Certificate, createPrivateKey } from 'node:crypto';
import { Errno, NodeError } from '../errors.js';
import type { AccountPrincipal, PlatformAction, Policy } from '../../auth/index.js';
import type { Clock } from '../clock.js';
import { v } from '../../api/index.js';
import type { Selector } from '../services/crud-routes.js';
import type { CertificateRecord, CertificateStore } from './store.js';

export interface CertificateLimits {
  maxChainBytes: number;
  maxKeyBytes: number;
  maxChainCertificates: number;
}

export const DEFAULT_CERTIFICATE_LIMITS: CertificateLimits = { maxChainBytes: 64 * 1024, maxKeyBytes: 16 * 1024, maxChainCertificates: 8 };

export function createCertificateSchema(limits: CertificateLimits) {
  return v.object({
    name: v.optional(v.string({ pattern: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, patternHint: 'must be a DNS label: a-z, 0-9 and -, at most 63' })),
    cn: v.optional(v.string({ minLength: 1, maxLength: 253 })),
    /** The contract's newer name of `cn`. */
    common_name: v.optional(v.string({ minLength: 1, maxLength: 253 })),
    chain: v.string({ minLength: 1, maxLength: limits.maxChainBytes }),
    pkey: v.string({ minLength: 1, maxLength: limits.maxKeyBytes }),
  });
}
export type CreateCertificateRequest = v.Infer<ReturnType<typeof createCertificateSchema>>;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** DNS names from `subjectAltName` ("DNS:a, DNS:b"), else the subject CN. */
export function certificateHostnames(cert: X509Certificate): string[] {
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (names.length > 0) return names;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

export interface CertificateDeps {
  store: CertificateStore;
  policy: Policy;
  clock: Clock;
  limits: CertificateLimits;
  inUse(uuid: string): boolean;
  onChange(): void;
}

/** A chain and key, parsed and checked. */
interface Material {
  leaf: X509Certificate;
  hostnames: string[];
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: number;
  notAfter: number;
  chainPem: string;
  keyPem: string;
}

export class CertificateService {
  constructor(private readonly deps: CertificateDeps) {}

  findVisible(principal: AccountPrincipal, sel: Selector, action: PlatformAction): CertificateRecord {
    const c = sel.uuid !== undefined ? this.deps.store.get(sel.uuid) : this.deps.store.getByName(principal.name, sel.name ?? '');
    const obj = c ? { kind: 'certificate' as const, owner: c.owner } : undefined;
    if (!c || !obj || !this.deps.policy.visible(principal, obj)) throw new NodeError(Errno.ENOENT, 'certificate not found');
    if (action !== 'read' && !this.deps.policy.authorize(principal, action, obj).allow)
      throw new NodeError(Errno.EACCES, `not allowed to ${action} this certificate`);
    return c;
  }

  listVisible(principal: AccountPrincipal): CertificateRecord[] {
    return this.deps.store.list().filter((c) => this.deps.policy.visible(principal, { kind: 'certificate', owner: c.owner }));
  }

  list(): CertificateRecord[] {
    return this.deps.store.list();
  }

  /** The parsed, checked material of a chain and its key (EINVAL for anything unusable). */
  private material(chain: string, pkey: string): Material {
    const pems = chain.match(PEM_CERT) ?? [];
    if (pems.length === 0) throw new NodeError(Errno.EINVAL, 'chain: no PEM certificate found');
    if (pems.length > this.deps.limits.maxChainCertificates)
      throw new NodeError(Errno.EINVAL, `chain: at most ${this.deps.limits.maxChainCertificates} certificates`);
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(pems[0]!);
      for (const pem of pems.slice(1)) new X509Certificate(pem);
    } catch {
      throw new NodeError(Errno.EINVAL, 'chain: not a valid X.509 certificate');
    }
    let key;
    try {
      key = createPrivateKey(pkey);
    } catch {
      throw new NodeError(Errno.EINVAL, 'pkey: not a valid unencrypted PEM private key');
    }
    if (!leaf.checkPrivateKey(key)) throw new NodeError(Errno.EINVAL, 'pkey does not belong to the first certificate of the chain');
    const notAfter = Date.parse(leaf.validTo);
    if (!(notAfter > this.deps.clock.now())) throw new NodeError(Errno.EINVAL, `certificate expired on ${new Date(notAfter).toISOString()}`);
    const hostnames = certificateHostnames(leaf);
    if (hostnames.length === 0) throw new NodeError(Errno.EINVAL, 'certificate names no DNS host');
    return {
      leaf,
      hostnames,
      subject: leaf.subject.replace(/\n/g, ', '),
      issuer: leaf.issuer.replace(/\n/g, ', '),
      serialNumber: leaf.serialNumber,
      notBefore: Date.parse(leaf.validFrom),
      notAfter,
      chainPem: pems.join('\n') + '\n',
      keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  create(principal: AccountPrincipal, req: CreateCertificateRequest): CertificateRecord {
    const { leaf, ...m } = this.material(req.chain, req.pkey);
    if (req.cn !== undefined && req.common_name !== undefined && req.cn.toLowerCase() !== req.common_name.toLowerCase())
      throw new NodeError(Errno.EINVAL, 'cn and common_name name the same thing: give one');
    const named = req.common_name ?? req.cn;
    const cn = named?.toLowerCase() ?? m.hostnames[0]!;
    if (named !== undefined && leaf.checkHost(cn) === undefined)
      throw new NodeError(Errno.EINVAL, `certificate does not cover ${named} (it covers ${m.hostnames.join(', ')})`);
    const record: CertificateRecord = {
      uuid: randomUUID(),
      name: req.name ?? `cert-${randomUUID().slice(0, 8)}`,
      owner: principal.name,
      createdAt: this.deps.clock.now(),
      commonName: cn,
      ...m,
    };
    this.deps.store.insert(record);
    this.deps.onChange();
    return record;
  }

  /**
   * Renews `c` with a new chain and key (the contract's PUT /v1/certificates): uuid, name and
   * owner stay, so service-group domains that use it keep it. The new certificate must cover
   * every host name the old one did, so no domain served with it loses its cover.
   */
  update(c: CertificateRecord, req: { chain: string; pkey: string }): CertificateRecord {
    const { leaf: _leaf, ...m } = this.material(req.chain, req.pkey);
    const lost = c.hostnames.filter((h) => !m.hostnames.includes(h));
    if (lost.length > 0) throw new NodeError(Errno.EINVAL, `the new certificate does not cover ${lost.join(', ')} (it covers ${m.hostnames.join(', ')})`);
    const next: CertificateRecord = { ...c, ...m };
    this.deps.store.replace(next);
    this.deps.onChange();
    return next;
  }

  remove(c: CertificateRecord): Record<string, unknown> {
    if (this.deps.inUse(c.uuid)) throw new NodeError(Errno.EBUSY, `certificate ${c.name} is used by a service group domain`);
    this.deps.store.delete(c.uuid);
    this.deps.onChange();
    return { uuid: c.uuid, name: c.name };
  }

  present(principal: AccountPrincipal, c: CertificateRecord, details: boolean): Record<string, unknown> {
    if (!details) return { uuid: c.uuid, name: c.name };
    const out: Record<string, unknown> = {
      uuid: c.uuid,
      name: c.name,
      created_at: new Date(c.createdAt).toISOString(),
      common_name: c.commonName,
      hostnames: c.hostnames,
      // The contract's states are pending, valid and error: an expired certificate is an error, said so.
      ...(c.notAfter > this.deps.clock.now() ? { state: 'valid' } : { state: 'error', message: 'certificate has expired' }),
      subject: c.subject,
      issuer: c.issuer,
      serial_number: c.serialNumber,
      not_before: new Date(c.notBefore).toISOString(),
      not_after: new Date(c.notAfter).toISOString(),
    };
    if (principal.role === 'root') out.owner = c.owner;
    return out;
  }
}
