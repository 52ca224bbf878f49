/**
 * Registry references parsed and normalised exactly as Docker does it (github.com/distribution/reference
 * v0.6.0, the version moby vendors: ParseNormalizedNamed, TagNameOnly, FamiliarString, FamiliarName), so
 * that the names plugctl computes are byte-for-byte the names dockerd reports. The regular expressions
 * are the Go ones transcribed; Go's RE2 picks the same submatches a backtracking engine does, so captures
 * agree with Go's on every input.
 */
import { SpecError } from '../errors.ts';

/** A normalised reference: domain and path always set, and at least one of tag or digest. */
export interface Reference {
  /** registry host, e.g. 'docker.io', '127.0.0.1:5000', '[::1]:5000', 'ghcr.io' */
  domain: string;
  /** repository path inside the registry, e.g. 'library/busybox', 'vieux/sshfs' */
  path: string;
  /** undefined only when a digest was given without a tag */
  tag?: string;
  /** 'algorithm:hex', e.g. 'sha256:<64 hex>' */
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const LOCALHOST = 'localhost';
/** Since reference v0.6.0 the limit applies to the path only; the domain is not counted. */
const MAX_PATH_LENGTH = 255;

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
// The reference grammar accepts any algorithm and upper-case hex of any length >= 32; the stricter
// per-algorithm check (go-digest's Digest.Validate) runs afterwards and decides the error message.
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
const ANCHORED_TAG_RE = new RegExp(`^${TAG}$`);
const ANCHORED_DIGEST_RE = new RegExp(`^${DIGEST}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Algorithms go-digest registers in dockerd, with the hex length each requires. */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

const EXPECTED_FORM =
  "expected [HOST[:PORT]/]PATH[:TAG][@ALGORITHM:HEX], e.g. 'vieux/sshfs:1.2' or " +
  "'registry.example.com:5000/team/plugin@sha256:<64 hex>'";

function invalid(input: string, reason: string): SpecError {
  return new SpecError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${reason}`);
}

/**
 * Docker's splitDockerDomain: the first component is a registry host only if it looks like one
 * ('.', ':', 'localhost', or any upper-case letter, since paths may not contain those); otherwise the
 * whole name lives on Docker Hub, where single-component names are official images under 'library/'.
 */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const maybeDomain = name.slice(0, slash);
  const maybeRemote = name.slice(slash + 1);
  let domain: string;
  let remote: string;
  if (maybeDomain === LOCALHOST) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remote] = [DEFAULT_DOMAIN, maybeRemote];
  } else if (maybeDomain.includes('.') || maybeDomain.includes(':')) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else {
    [domain, remote] = [DEFAULT_DOMAIN, name];
  }
  if (domain === DEFAULT_DOMAIN && !remote.includes('/')) remote = OFFICIAL_REPO_PREFIX + remote;
  return [domain, remote];
}

/** go-digest's Digest.Validate, whose checks (and their order) decide which error docker reports. */
function validateDigest(input: string, digest: string): void {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH.get(algorithm);
  if (length === undefined) {
    throw invalid(
      input,
      `unsupported digest algorithm ${JSON.stringify(algorithm)}; expected one of sha256, sha384, sha512`,
    );
  }
  if (hex.length !== length) {
    throw invalid(
      input,
      `invalid checksum digest length: ${algorithm} needs ${length} hex characters, got ${hex.length}`,
    );
  }
  if (!/^[a-f0-9]+$/.test(hex)) {
    throw invalid(input, `invalid checksum digest format: ${algorithm} hex must be lowercase [a-f0-9]`);
  }
}

/**
 * Docker only says "invalid reference format"; name the likeliest culprit so a user can fix the document
 * without reading the grammar. Only the wording is ours: every input reaching here is invalid to docker.
 */
function diagnose(input: string): string {
  if (/\s/.test(input)) return `it contains whitespace; ${EXPECTED_FORM}`;
  const at = input.indexOf('@');
  if (at !== -1) {
    const digest = input.slice(at + 1);
    if (!ANCHORED_DIGEST_RE.test(digest)) {
      return `'@' must be followed by a digest ALGORITHM:HEX with at least 32 hex characters, got ${JSON.stringify(digest)}`;
    }
  }
  const name = at === -1 ? input : input.slice(0, at);
  if (name.startsWith('[') && !name.includes('/')) {
    return `an IPv6 registry host must be followed by /PATH, e.g. '[::1]:5000/repo'; ${EXPECTED_FORM}`;
  }
  const lastSlash = name.lastIndexOf('/');
  const colon = name.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    const tag = name.slice(colon + 1);
    if (tag === '') return `the tag after ':' is empty; ${EXPECTED_FORM}`;
    if (!ANCHORED_TAG_RE.test(tag)) {
      return (
        `invalid tag ${JSON.stringify(tag)}: expected 1 to 128 characters of [A-Za-z0-9_.-], ` +
        "not starting with '.' or '-'"
      );
    }
  }
  return (
    `invalid reference format; ${EXPECTED_FORM}. Path components are lowercase letters and digits ` +
    "separated by '.', '_', '__' or one or more '-', joined by '/'"
  );
}

/**
 * Docker's grammar takes any digits as a port and any hex and colons as an IPv6 host, so
 * `registry.example:99999/x` parses there and fails only when pulled. A reference no pull can reach
 * is refused here instead, where it is a fix to the document and not a transient network failure.
 */
function checkEndpoint(input: string, domain: string): void {
  const port = /:(\d+)$/.exec(domain)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(input, `the registry port ${port} is out of range; a port is 1 to 65535`);
  }
  if (!URL.canParse(`https://${domain}/`)) {
    throw invalid(
      input,
      `${JSON.stringify(domain)} is not a registry address a URL can hold; ${EXPECTED_FORM}`,
    );
  }
}

/**
 * Parses `input` like docker's `ParseNormalizedNamed` followed by `TagNameOnly`: applies the docker.io
 * domain and `library/` prefix, rewrites index.docker.io to docker.io, and adds tag 'latest' only when
 * neither a tag nor a digest was given. A tag given with a digest is kept.
 *
 * Throws SpecError 'INVALID_REFERENCE' for anything docker rejects (empty input, bad grammar, upper case
 * in the path, a bare 64-hex string, a path over 255 characters, a malformed or unsupported digest).
 * Deliberate differences: a port out of 1-65535 or a host no URL can hold is refused, and docker's parser accepts a first component that contains '.' or ':' but
 * is not a valid host name (e.g. 'my_registry.local/x') and yields an empty domain that no pull can
 * use; that is rejected here instead of failing later at pull time.
 */
export function parseReference(input: string): Reference {
  if (input === '') throw invalid(input, `the reference is empty; ${EXPECTED_FORM}`);
  if (IDENTIFIER_RE.test(input)) {
    throw invalid(
      input,
      'a 64-character hexadecimal string cannot be used as a repository name (docker reads it as an ID); ' +
        EXPECTED_FORM,
    );
  }

  const [splitDomain, remainder] = splitDockerDomain(input);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep === -1 ? remainder : remainder.slice(0, tagSep);
  if (remote.toLowerCase() !== remote) {
    throw invalid(input, `repository name (${remote}) must be lowercase`);
  }

  const full = `${splitDomain}/${remainder}`;
  const match = REFERENCE_RE.exec(full);
  if (match === null) {
    const lower = full.toLowerCase();
    if (lower !== full && REFERENCE_RE.test(lower)) {
      throw invalid(input, 'repository name must be lowercase');
    }
    throw invalid(input, diagnose(input));
  }
  const [, name = '', tag, digest] = match;

  const nameMatch = ANCHORED_NAME_RE.exec(name);
  const domain = nameMatch?.[1] ?? '';
  const path = nameMatch?.[2] ?? name;
  if (path.length > MAX_PATH_LENGTH) {
    throw invalid(
      input,
      `repository name must not be more than ${MAX_PATH_LENGTH} characters (path ${JSON.stringify(path.slice(0, 40))}... has ${path.length})`,
    );
  }
  if (digest !== undefined) validateDigest(input, digest);
  if (domain === '') {
    throw invalid(
      input,
      `${JSON.stringify(splitDomain)} is taken as a registry host because it contains '.' or ':', but it is ` +
        'not a valid host name; expected HOST[:PORT] with letters, digits and inner hyphens (no underscores)',
    );
  }
  checkEndpoint(input, domain);

  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

function suffix(ref: Reference): string {
  return (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`);
}

/** The fully qualified string, `domain/path[:tag][@digest]`, e.g. 'docker.io/library/busybox:latest'. */
export function formatReference(ref: Reference): string {
  return `${ref.domain}/${ref.path}${suffix(ref)}`;
}

/**
 * The repository as docker displays it (FamiliarName): docker.io is dropped, and so is 'library/' when
 * what follows it is a single component; other registries keep their domain. E.g. 'busybox',
 * 'vieux/sshfs', '127.0.0.1:5000/test/vol'.
 */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** The reference as docker displays it (FamiliarString): familiarName plus ':tag' and '@digest' if set. */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + suffix(ref);
}

/**
 * The local plugin name `docker plugin install REF` creates when no --alias is given (moby's plugin
 * router, getName): always `familiarName:tag`, never with a digest. A digest-only reference is named
 * `familiarName:latest` (the digest is dropped and 'latest' assumed, so it takes the same name as a
 * plain `REPO` install even though the content is pinned); a tag+digest reference pulls by digest and
 * is named `familiarName:tag` (the tag is only a label here; dockerd does not check it against the
 * registry).
 */
export function defaultLocalName(ref: Reference): string {
  return `${familiarName(ref)}:${ref.tag ?? DEFAULT_TAG}`;
}

/** Whether the reference pins content by digest. */
export function hasDigest(ref: Reference): boolean {
  return ref.digest !== undefined;
}

/**
 * The same reference without its digest, tag kept. A digest-only reference gets tag 'latest' (TagNameOnly)
 * so the result still names something pullable, as parseReference's results always do.
 */
export function withoutDigest(ref: Reference): Reference {
  return { domain: ref.domain, path: ref.path, tag: ref.tag ?? DEFAULT_TAG };
}
