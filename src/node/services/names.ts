/**
 * Generated service group names `<adjective>-<noun>-<8 chars [a-z0-9]>` and
 * their public FQDNs `<service>.<metro>.<domain>`. The default domain is
 * `localhost`, whose subdomains resolve to loopback without any DNS set-up in
 * curl and in most stub resolvers (RFC 6761), so `https://<name>.<metro>.localhost`
 * works on a laptop.
 */
import { randomInt } from 'node:crypto';

const ADJECTIVES = [
  'amber', 'bold', 'brave', 'bright', 'calm', 'clever', 'cool', 'crisp', 'daring', 'eager',
  'fancy', 'gentle', 'glad', 'grand', 'happy', 'keen', 'kind', 'lively', 'lucky', 'mellow',
  'nimble', 'noble', 'proud', 'quick', 'quiet', 'rapid', 'shiny', 'silent', 'sleek', 'snowy',
  'solid', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'wise', 'young', 'zesty', 'polished',
] as const;

const NOUNS = [
  'river', 'meadow', 'forest', 'harbor', 'canyon', 'breeze', 'falcon', 'otter', 'willow', 'comet',
  'glacier', 'island', 'lantern', 'maple', 'nebula', 'orchid', 'pebble', 'quartz', 'raven', 'summit',
  'tiger', 'valley', 'wave', 'ember', 'fjord', 'grove', 'heron', 'iris', 'juniper', 'koala',
  'lagoon', 'mesa', 'nova', 'oasis', 'prairie', 'reef', 'sparrow', 'tundra', 'violet', 'fog',
] as const;

const SUFFIX = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function generateServiceName(): string {
  let suffix = '';
  for (let i = 0; i < 8; i++) suffix += SUFFIX[randomInt(SUFFIX.length)];
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${suffix}`;
}

export const GENERATED_SERVICE_NAME = /^[a-z]+-[a-z]+-[a-z0-9]{8}$/;

/** A DNS label (also the form of service group names). */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A lower-case hostname of DNS labels, at most 253 characters. */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((l) => DNS_LABEL.test(l));
}

export function serviceFqdn(label: string, metro: string, domain: string): string {
  return `${label}.${metro}.${domain}`;
}

/**
 * True when a user-named FQDN is the platform's: `localhost` and its
 * subdomains (RFC 6761), IP literals (a numeric last label), `internal` and
 * `*.internal` (instance names), and the platform's domain with everything
 * under it — the platform generates those names itself from a label
 * (`{ name: "shop" }` becomes `shop.<metro>.<domain>`), so a dotted name there
 * is never the user's to claim.
 */
export function isPlatformDomain(fqdn: string, platformDomain: string): boolean {
  const name = fqdn.toLowerCase().replace(/\.$/, '');
  const under = (zone: string): boolean => name === zone || name.endsWith(`.${zone}`);
  if (under('localhost') || under('internal') || under(platformDomain.toLowerCase())) return true;
  return /^[0-9]+$/.test(name.slice(name.lastIndexOf('.') + 1));
}
