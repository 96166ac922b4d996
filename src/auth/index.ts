/**
 * Public face of src/auth: accounts and API tokens, the registry token
 * service, the authorization policy and per-principal limits. It imports
 * nothing of ours; the registry, node and control plane plug it in.
 *
 * ── Composition ────────────────────────────────────────────────────────────
 * The registry side is composed once, in src/registry/token-auth.ts:
 *   const auth = createRegistryAuth({ publicUrl, dataDir });   // accounts, root token, signing key, policy, limits
 *   createRegistry({ dataDir, access: auth });                  // or startRegistryServer({ accessFor: (url) => … })
 * which does the following with this module:
 *   const accounts = new AccountStore({ path: `${dataDir}/auth.db` });   // or { database } to share one
 *   accounts.ensureRootAccount(`${dataDir}/root-token`);                 // 0600 file, first start only
 *   const signingKey = loadOrCreateSigningKey(`${dataDir}/registry-signing-key.pem`);
 *   const policy = new Policy({ anonymousPullOfficial: config.anonymousPull });
 *   const registryAuth = createRegistryAuthenticator({
 *     realm: `${publicUrl}/v2/token`, service: 'ukc-registry', issuer: 'ukc',
 *     policy, accounts, signingKey,
 *     repositoryReaders: (name) => metadata.imageUsers(name),  // the image's `users`, or undefined
 *   });
 * A node's local registry that should accept the control plane's tokens pins
 * its public key instead: `trustedKeys: [trustedKeyFromPem(publicKeyPem)]` (no signingKey
 * needed unless the node issues tokens itself).
 *
 * ── How the registry calls it ──────────────────────────────────────────────
 *   route GET|POST /v2/token      → registryAuth.tokenEndpoint(req, res)  (answers and ends the response)
 *   route GET /v2/                → await registryAuth.authorizeBase(req)
 *   every /v2/<name>/... route    → its `Authorizer` hook is `registryAuth.authorize`:
 *       const principal = await registryAuth.authorize(req, { repository: name, actions });
 *     with actions from the route, never from the client:
 *       GET/HEAD manifests, blobs, tags/list  → ['pull']
 *       PUT manifests, POST/PATCH/PUT uploads → ['pull', 'push']
 *       DELETE manifests, blobs               → ['delete']
 *     It throws AuthError; map it once in the registry's error table:
 *       UNAUTHORIZED 401 → set `WWW-Authenticate: ${err.challenge}`
 *       DENIED 403       → OCI `DENIED` (also for a registry token that names the
 *                          repository but lacks the action: it was asked and refused)
 *       TOOMANYREQUESTS  → 429 with `Retry-After: ${err.retryAfterSeconds}`
 *   POST uploads ?mount=<digest>&from=<src>:
 *       if (await registryAuth.mountDecision(principal, name, src) === 'upload') → plain 202 upload session
 *       (never reveal whether <src> or the blob exists)
 *   upload sessions: limited per principal by the registry itself (`maxUploadsPerPrincipal`).
 *   GET /v2/_catalog: registryAuth.mayListCatalog(principal), else DENIED.
 *
 * ── The platform API (node controller, control plane) ──────────────────────
 *   const platformAuth = createPlatformAuthenticator({ accounts, rateLimiter: new RequestRateLimiter() });
 *   const principal = platformAuth.authenticate(req);   // `Bearer <UKC_TOKEN>`; throws AuthError (401/429)
 *   For every object touched:
 *       if (!policy.visible(principal, { kind: 'instance', owner })) → ENOENT / 404, exactly as if missing
 *       if (!policy.authorize(principal, 'write', obj).allow)        → 403
 *   Listings filter with `visible`. Images: `{ kind: 'repository', name, readers }` with action 'pull'.
 *   Quotas are on the account (`accounts.getAccount(name).quotas`); before creating, call
 *   `exceededQuota(quotas, usage, { instances: n, liveMemoryMb: m })` and answer EDQUOT (122) naming it.
 */
export * from './errors.js';
export * from './names.js';
export * from './scope.js';
export * from './jwt.js';
export * from './keyfile.js';
export * from './accounts.js';
export { writeSecretFile, SECRET_FILE_MODE } from './secretfile.js';
export * from './policy.js';
export * from './ratelimit.js';
export * from './tokenservice.js';
export * from './registry-auth.js';
export * from './platform-auth.js';
