/**
 * The node's own TLS material, made once at first start with the `openssl` CLI
 * (Node 20 can read certificates but not issue them):
 *
 *   <dir>/ca.crt        a generated CA (P-256, 10 years) — give it to clients: `curl --cacert`
 *   <dir>/ca.key        its key (0600)
 *   <dir>/wildcard.crt  `*.<metro>.<domain>` and `<metro>.<domain>`, signed by the CA
 *   <dir>/wildcard.key  its key (0600)
 *
 * Invariant: a file is either absent or complete — each is written in a temp
 * directory, fsynced and renamed into place, then the directory is fsynced
 * (util/durable.ts's fsync helpers; two files renamed in a fixed order).
 * The leaf is re-issued (same CA) when the configured wildcard names change or it
 * is close to expiry; the CA is never replaced once made.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDirSync, fsyncFileSync } from '../../util/index.js';

const run = promisify(execFile);

export interface NodeTlsOptions {
  /** Directory holding the files above (created 0700). */
  dir: string;
  /** e.g. `local.localhost`: the wildcard covers `*.<zone>` and `<zone>`. */
  zone: string;
  /** The `openssl` binary. */
  openssl?: string;
  /** Leaf validity in days (825 is the longest most clients accept). */
  leafDays?: number;
  caDays?: number;
  /** Re-issue the leaf when fewer days than this remain. */
  renewBeforeDays?: number;
}

export interface NodeTlsMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
  caCertPath: string;
}

function leafCovers(certPem: string, zone: string, renewBeforeDays: number): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const expires = Date.parse(cert.validTo);
    if (!(expires - Date.now() > renewBeforeDays * 86_400_000)) return false;
    return cert.checkHost(`x.${zone}`) !== undefined && cert.checkHost(zone) !== undefined;
  } catch {
    return false;
  }
}

/** Loads the node's CA and wildcard certificate, generating what is missing or stale. */
export async function ensureNodeTls(options: NodeTlsOptions): Promise<NodeTlsMaterial> {
  const openssl = options.openssl ?? 'openssl';
  const leafDays = options.leafDays ?? 825;
  const caDays = options.caDays ?? 3650;
  const renewBefore = options.renewBeforeDays ?? 30;
  const dir = options.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string): string => join(dir, f);
  const work = mkdtempSync(join(dir, '.tmp-'));
  try {
    if (!existsSync(p('ca.crt')) || !existsSync(p('ca.key'))) {
      await run(openssl, [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', join(work, 'ca.key'), '-out', join(work, 'ca.crt'), '-days', String(caDays),
        '-subj', '/O=ukc/CN=ukc node CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      for (const f of ['ca.key', 'ca.crt']) {
        chmodSync(join(work, f), f.endsWith('.key') ? 0o600 : 0o644);
        fsyncFileSync(join(work, f));
      }
      // Key first: a crash between the renames leaves no certificate without its key.
      renameSync(join(work, 'ca.key'), p('ca.key'));
      renameSync(join(work, 'ca.crt'), p('ca.crt'));
      fsyncDirSync(dir);
      rmSync(p('wildcard.crt'), { force: true });
    }
    const haveLeaf = existsSync(p('wildcard.crt')) && existsSync(p('wildcard.key'));
    if (!haveLeaf || !leafCovers(readFileSync(p('wildcard.crt'), 'utf8'), options.zone, renewBefore)) {
      writeFileSync(
        join(work, 'ext.cnf'),
        [
          `subjectAltName=DNS:*.${options.zone},DNS:${options.zone}`,
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth',
          '',
        ].join('\n'),
      );
      await run(openssl, [
        'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', join(work, 'wildcard.key'), '-out', join(work, 'wildcard.csr'), '-subj', `/O=ukc/CN=*.${options.zone}`,
      ]);
      await run(openssl, [
        'x509', '-req', '-in', join(work, 'wildcard.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
        '-set_serial', `0x${randomBytes(16).toString('hex').replace(/^./, '1')}`,
        '-days', String(leafDays), '-extfile', join(work, 'ext.cnf'), '-out', join(work, 'wildcard.crt'),
      ]);
      chmodSync(join(work, 'wildcard.key'), 0o600);
      fsyncFileSync(join(work, 'wildcard.key'));
      fsyncFileSync(join(work, 'wildcard.crt'));
      renameSync(join(work, 'wildcard.key'), p('wildcard.key'));
      renameSync(join(work, 'wildcard.crt'), p('wildcard.crt'));
      fsyncDirSync(dir);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const material: NodeTlsMaterial = {
    caCertPem: readFileSync(p('ca.crt'), 'utf8'),
    certPem: readFileSync(p('wildcard.crt'), 'utf8'),
    keyPem: readFileSync(p('wildcard.key'), 'utf8'),
    caCertPath: p('ca.crt'),
  };
  // Refuse to serve a pair that does not belong together (a half-replaced directory by hand).
  if (!new X509Certificate(material.certPem).checkPrivateKey(createPrivateKey(material.keyPem)))
    throw new Error(`${dir}: wildcard.crt does not match wildcard.key`);
  return material;
}
