/**
 * The registry signing key on disk: a PKCS#8 PEM private key, mode 0600,
 * created atomically on first use. Its public half (SPKI PEM) is what other
 * registries pin to trust our tokens.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { generateSigningKey, signingKeyFrom, keyIdOf, type JwtAlgorithm, type SigningKey, type TrustedKey } from './jwt.js';
import { writeSecretFile } from './secretfile.js';

/** Loads the signing key at `path`, or creates one there (mode 0600) if the file does not exist. */
export function loadOrCreateSigningKey(path: string, alg: JwtAlgorithm = 'EdDSA'): SigningKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const key = generateSigningKey(alg);
    writeSecretFile(path, key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    return key;
  }
  return signingKeyFrom(createPrivateKey(pem));
}

/** The public key PEM to hand to verifiers (not secret). */
export function publicKeyPem(key: SigningKey): string {
  return key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
}

/** A pinned key from a public key PEM (Ed25519 → EdDSA, P-256 → ES256). */
export function trustedKeyFromPem(pem: string): TrustedKey {
  const publicKey = createPublicKey(pem);
  let alg: JwtAlgorithm;
  if (publicKey.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ES256';
  else throw new TypeError('trusted key must be an Ed25519 or P-256 public key');
  return Object.freeze({ kid: keyIdOf(publicKey), alg, publicKey });
}
