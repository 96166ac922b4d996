/**
 * Which registries get the user's API token when the CLI builds, imports or
 * pushes: only the platform's own — the profile's central registry, the
 * registries of its metros, and a central named explicitly with `--registry`
 * or UKC_REGISTRY. Any other host (a third-party registry in FROM, a mirror)
 * gets nothing: a token is never sent where the user did not point it.
 */
import type { Credentials } from '../client/index.js';
import type { CliRuntime } from './runtime.js';

/** `host[:port]` in one spelling (lower case, no scheme, no trailing slash). */
export function normalizeRegistryHost(text: string): string {
  return text.replace(/^https?:\/\//, '').replace(/\/+$/, '').toLowerCase();
}

export interface RegistryCredentialPlan {
  /** The central registry from the profile (host[:port]), if any. */
  profileRegistry: string | undefined;
  /** Credentials for a registry host, or undefined (send nothing). */
  credentialsFor(host: string): Credentials | undefined;
  /** The hosts that receive the token (for messages and tests). */
  trustedHosts: readonly string[];
}

/**
 * Resolves the CLI settings if there are any (a missing or unreadable config
 * means no token and no profile registry) and answers which hosts get the token.
 */
export function registryCredentials(cli: CliRuntime, explicitCentral?: string): RegistryCredentialPlan {
  let token: string | undefined;
  let profileRegistry: string | undefined;
  const hosts = new Set<string>();
  try {
    const s = cli.settings();
    token = s.token;
    profileRegistry = s.registry;
    if (s.registry) hosts.add(normalizeRegistryHost(s.registry));
    for (const m of Object.values(s.profile?.metros ?? {})) if (m.registry) hosts.add(normalizeRegistryHost(m.registry));
    if (s.metroRegistry) hosts.add(normalizeRegistryHost(s.metroRegistry));
  } catch {
    // No usable config: builds run without a token (and without a default registry).
  }
  if (explicitCentral) hosts.add(normalizeRegistryHost(explicitCentral));
  const trustedHosts = token === undefined ? [] : [...hosts];
  return {
    profileRegistry,
    trustedHosts,
    credentialsFor: (host) => (token !== undefined && hosts.has(normalizeRegistryHost(host)) ? { token } : undefined),
  };
}
