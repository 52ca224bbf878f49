// The layers of controller/ (docs/architecture.md, "Layers"): imports only go down. `make lint` runs
// dependency-cruiser with these rules, so an upward import fails CI naming the rule it breaks. Type-only
// imports count too (they are still knowledge of the layer above). Tests and benchmarks are not
// cruised: they may import anything.

/** The layers, top first. A directory ends in `/`; a file is named in full. */
const LAYERS = [
  { name: 'cli', members: ['main.ts', 'cli/', 'docs/'] },
  { name: 'reconcile-sources', members: ['reconcile/', 'sources/'] },
  { name: 'store-registry-kube', members: ['store/', 'registry/', 'kube/'] },
  { name: 'plugin-api', members: ['plugin/', 'api/'] },
  { name: 'runtime-observe-errors', members: ['runtime/', 'observe/', 'errors.ts', 'error-codes.ts'] },
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A path regex matching the given members of controller/. */
const under = (members) =>
  `^controller/(${members.map((m) => (m.endsWith('/') ? escape(m) : `${escape(m)}$`)).join('|')})`;
/** `a/, b/ and c/` */
const list = (members) =>
  members.length === 1 ? members[0] : `${members.slice(0, -1).join(', ')} and ${members.at(-1)}`;

/** One rule per pair of layers, lower -> upper: forbidden. */
const upward = LAYERS.flatMap((lower, l) =>
  LAYERS.slice(0, l).map((upper, u) => ({
    name: `${lower.name}-not-up-to-${upper.name}`,
    severity: 'error',
    comment: `${list(lower.members)} (layer ${l + 1}) ${lower.members.length === 1 ? 'is' : 'are'} below ${list(upper.members)} (layer ${u + 1}): move the shared code down or invert the dependency`,
    from: { path: under(lower.members) },
    to: { path: under(upper.members) },
  })),
);

/** Directions forbidden inside a layer. */
const sideways = [
  {
    name: 'sources-not-into-reconcile',
    comment:
      'sources/ only turns files or resources into documents and never decides anything: it may not import reconcile/ (reconcile/ may import sources/)',
    from: { path: under(['sources/']) },
    to: { path: under(['reconcile/']) },
  },
  {
    name: 'registry-not-into-store',
    comment:
      'registry/ is the OCI client both stores use: it may not import store/ (store/ may import registry/)',
    from: { path: under(['registry/']) },
    to: { path: under(['store/']) },
  },
  {
    name: 'registry-not-into-kube',
    comment: 'registry/ is the OCI client and knows nothing of the cluster: it may not import kube/',
    from: { path: under(['registry/']) },
    to: { path: under(['kube/']) },
  },
  {
    name: 'kube-not-into-store',
    comment: 'kube/ is the cluster side and never touches the host: it may not import store/',
    from: { path: under(['kube/']) },
    to: { path: under(['store/']) },
  },
  {
    name: 'plugin-imports-only-errors',
    comment: "plugin/ is the plugin config model: it imports nothing of plugctl's but errors",
    from: { path: under(['plugin/']) },
    to: { path: '^controller/', pathNot: under(['plugin/', 'errors.ts', 'error-codes.ts']) },
  },
  {
    name: 'api-imports-only-types-of-plugin',
    comment:
      "api/ may use plugin/'s types (a privilege's shape) but not its code: move shared code down or into api/",
    from: { path: under(['api/']) },
    to: { path: under(['plugin/']), dependencyTypesNot: ['type-only'] },
  },
  {
    name: 'runtime-imports-only-errors',
    comment: "runtime/ (clock, queue, workers, files) imports nothing of plugctl's but errors",
    from: { path: under(['runtime/']) },
    to: { path: '^controller/', pathNot: under(['runtime/', 'errors.ts', 'error-codes.ts']) },
  },
  {
    name: 'errors-import-nothing',
    comment: "errors.ts and error-codes.ts are the bottom: they import nothing of plugctl's but each other",
    from: { path: under(['errors.ts', 'error-codes.ts']) },
    to: { path: '^controller/', pathNot: under(['errors.ts', 'error-codes.ts']) },
  },
].map((rule) => ({ severity: 'error', ...rule }));

export default {
  forbidden: [
    ...upward,
    ...sideways,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'modules must not import each other in a cycle: split out what both need',
      from: { path: '^controller/' },
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: '^controller/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
