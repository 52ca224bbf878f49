/**
 * The JSON Schema of a DockerPlugin document: the single source of truth for validating files (ajv,
 * validate.ts) and for the CustomResourceDefinition (crd-gen.ts derives openAPIV3Schema from it).
 *
 * Because the same object must also become a Kubernetes structural schema, it stays inside the subset
 * both understand: no `$ref`, no `const` (enums of one value instead), every node typed, maps written
 * as `additionalProperties: <schema>`. Where Kubernetes needs more, `x-kubernetes-*` extensions carry it;
 * validate.ts teaches ajv to honour the ones with meaning (list-type uniqueness) and to ignore the rest.
 *
 * Cross-field rules are logical junctors (`not`, `anyOf`, `oneOf`) over `required`, enums and bounds:
 * constructs every apiextensions.k8s.io/v1 API server enforces, so a cluster of any version (1.20 has
 * no CEL) rejects exactly what plugctl rejects. The node carrying a junctor also carries
 * `x-plugctl-message`, the sentence validate.ts shows when the junctor fails; crd-gen.ts drops every
 * `x-plugctl-*` key. Inside junctors, `type` is present only because ajv's strict mode requires it;
 * crd-gen.ts strips it there, as Kubernetes forbids it.
 */
import { ABSOLUTE_PATH, DNS_LABEL, DNS_SUBDOMAIN, LOCAL_NAME, PERCENT } from './patterns.ts';
import type { DockerPluginSpec, ObjectMeta } from './types.ts';
import { API_VERSION, KIND } from './types.ts';

export type { NamedPattern } from './patterns.ts';
export { ABSOLUTE_PATH, DNS_LABEL, DNS_SUBDOMAIN, LOCAL_NAME, NAMED_PATTERNS, PERCENT } from './patterns.ts';

/** Values the schema declares as defaults; withDefaults() in validate.ts applies exactly these. */
export const SPEC_DEFAULTS = {
  enabled: true,
  grantAllPrivileges: false,
  upgradePolicy: 'OnSpecChange',
  inUse: 'Wait',
  enableTimeoutSeconds: 30,
  suspend: false,
  maxUnavailable: 1,
  healthCheckEnabled: true,
  healthPeriodSeconds: 10,
  healthTimeoutSeconds: 2,
  healthFailureThreshold: 3,
} as const;

const stringMap = (description: string, valueDescription: string) =>
  ({
    type: 'object',
    description,
    additionalProperties: { type: 'string', description: valueDescription },
  }) as const;

const pathMap = (description: string, valueDescription: string) =>
  ({
    type: 'object',
    description,
    additionalProperties: {
      type: 'string',
      description: valueDescription,
      pattern: ABSOLUTE_PATH.pattern,
    },
  }) as const;

/**
 * One env value: a string, or a reference to a secret. In the CRD a node may not be either a string or
 * an object (structural schemas), so it becomes an opaque value there (`x-plugctl-crd-opaque`) and is
 * checked by this schema when the agent loads the object.
 */
const envValueSchema = {
  type: ['string', 'object'],
  description: 'Value of the environment variable, or a reference to a secret holding it.',
  'x-kubernetes-preserve-unknown-fields': true,
  'x-plugctl-crd-opaque': true,
  // these apply to the object form only; a string passes them
  additionalProperties: false,
  required: ['valueFrom'],
  properties: {
    valueFrom: {
      type: 'object',
      description: 'Where the secret is read: exactly one of file and secretKeyRef.',
      additionalProperties: false,
      properties: {
        file: {
          type: 'string',
          description:
            'File mode: absolute path of a file on the host holding the value (one trailing newline is dropped).',
          pattern: ABSOLUTE_PATH.pattern,
          maxLength: 4096,
        },
        secretKeyRef: {
          type: 'object',
          description: "Kubernetes mode: a key of a Secret in the agent's own namespace.",
          additionalProperties: false,
          required: ['name', 'key'],
          properties: {
            name: {
              type: 'string',
              description: 'Name of the Secret.',
              minLength: 1,
              maxLength: 253,
              pattern: DNS_SUBDOMAIN.pattern,
            },
            key: {
              type: 'string',
              description: 'Key inside the Secret.',
              minLength: 1,
              maxLength: 253,
              pattern: '^[-._a-zA-Z0-9]+$',
            },
          },
        },
      },
      oneOf: [
        { required: ['file'], properties: { file: {} } },
        { required: ['secretKeyRef'], properties: { secretKeyRef: {} } },
      ],
      'x-plugctl-message': 'valueFrom needs exactly one of file and secretKeyRef',
    },
  },
} as const;

const serverSet = 'Set by the Kubernetes API server; accepted so that `kubectl get -o yaml` output loads.';

/** The metadata schema: what users write plus the server-set fields plugctl tolerates and ignores. */
const metadataSchema = {
  type: 'object',
  description:
    'Standard object metadata. Only name, labels and annotations are meaningful; the other fields are set by the Kubernetes API server and tolerated so that `kubectl get -o yaml` output can be loaded as a file.',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      description:
        'Name of this DockerPlugin: a DNS-1123 label, unique among all DockerPlugin documents. It is the key plugctl tracks the plugin by (ownership inventory, status, dependsOn), not the Docker plugin name (see spec.alias).',
      maxLength: 63,
      pattern: DNS_LABEL.pattern,
    },
    labels: stringMap(
      'Key/value pairs for selecting and organising documents. plugctl does not interpret them.',
      'Label value.',
    ),
    annotations: stringMap(
      'Arbitrary non-identifying key/value pairs for tools and people. plugctl does not interpret them.',
      'Annotation value.',
    ),
    namespace: {
      type: 'string',
      description: 'DockerPlugin is cluster-scoped: must be empty or absent.',
      enum: [''],
    },
    generateName: {
      type: 'string',
      description:
        'Prefix the Kubernetes API server uses to generate a name when none is given. Tolerated so objects created that way still validate; files must set name.',
    },
    uid: { type: 'string', description: `Unique ID of the object in the cluster. ${serverSet}` },
    resourceVersion: {
      type: 'string',
      description: `Opaque version of the object for optimistic concurrency. ${serverSet}`,
    },
    generation: {
      type: 'integer',
      description: `Sequence number of changes to the spec; status reports the generation it observed. ${serverSet}`,
      minimum: 0,
    },
    creationTimestamp: {
      type: 'string',
      nullable: true,
      description: `RFC 3339 time the object was created (null in some client-side outputs). ${serverSet}`,
    },
    deletionTimestamp: {
      type: 'string',
      nullable: true,
      description: `RFC 3339 time after which the object is deleted, once its finalizers are removed. ${serverSet}`,
    },
    deletionGracePeriodSeconds: {
      type: 'integer',
      description: `Seconds allowed for graceful termination before deletion. ${serverSet}`,
    },
    selfLink: { type: 'string', description: `Legacy URL of the object. ${serverSet}` },
    finalizers: {
      type: 'array',
      description: 'Keys that must be removed before the object is deleted. Managed by controllers.',
      items: { type: 'string', description: 'A finalizer key.' },
    },
    ownerReferences: {
      type: 'array',
      description: `Objects this object depends on for garbage collection. ${serverSet}`,
      items: {
        type: 'object',
        description: 'An owner reference, preserved as is.',
        'x-kubernetes-preserve-unknown-fields': true,
      },
    },
    managedFields: {
      type: 'array',
      description: `Server-side apply field ownership records. ${serverSet}`,
      items: {
        type: 'object',
        description: 'A managed-fields entry, preserved as is.',
        'x-kubernetes-preserve-unknown-fields': true,
      },
    },
  },
} as const;

/** The spec schema: desired state of one managed plugin. */
const specSchema = {
  type: 'object',
  description: 'Desired state of one Docker managed plugin on every host the nodeSelector matches.',
  additionalProperties: false,
  properties: {
    remote: {
      type: 'string',
      description:
        'Registry reference of the plugin image, e.g. `vieux/sshfs:1.2` or `registry.example.com/team/plugin:v1`. A digest (`@sha256:...`) pins the content; with a tag, upgrade.policy decides whether a moved tag is followed. Exactly one of remote and build is required.',
      minLength: 1,
    },
    alias: {
      type: 'string',
      description:
        "Local name of the plugin on the host (Docker's `--alias`), as volume and network drivers refer to it. Defaults to the familiar form of the remote reference with its tag, e.g. `vieux/sshfs:1.2`. Two documents must not resolve to the same local name.",
      maxLength: 255,
      pattern: LOCAL_NAME.pattern,
    },
    enabled: {
      type: 'boolean',
      description:
        'Whether the plugin is enabled once installed. false installs and configures it but leaves it disabled.',
      default: SPEC_DEFAULTS.enabled,
    },
    privileges: {
      type: 'array',
      description:
        'The exact privileges you consent to grant, as `docker plugin inspect`/`install` lists them, one entry per privilege (a name may repeat: one `mount` per host path). If the plugin asks for anything not listed here, the install or upgrade stalls until the document changes. Leave out (with grantAllPrivileges unset) to grant nothing. Mutually exclusive with grantAllPrivileges: true.',
      // Not a map keyed by name: a plugin asks for one `mount` privilege per mount with a source
      // (vieux/sshfs asks for two), and the grants must list each of them.
      'x-kubernetes-list-type': 'atomic',
      items: {
        type: 'object',
        description: 'One privilege as Docker names it, e.g. `{name: network, value: [host]}`.',
        additionalProperties: false,
        required: ['name', 'value'],
        properties: {
          name: {
            type: 'string',
            description:
              'Privilege name as Docker reports it: network, mount, device, allow-all-devices, capabilities, host pid.',
            minLength: 1,
          },
          description: {
            type: 'string',
            description: 'Human explanation, as Docker reports it. Informational only; not compared.',
          },
          value: {
            type: 'array',
            description:
              'Granted values, e.g. `[host]` for network or `[CAP_SYS_ADMIN]` for capabilities. Compared as a set.',
            items: { type: 'string', description: 'One granted value.' },
          },
        },
      },
    },
    grantAllPrivileges: {
      type: 'boolean',
      description:
        'Grant whatever privileges the plugin asks for, including new ones an upgrade adds. An explicit opt-out of the consent check; prefer listing privileges. Mutually exclusive with a non-empty privileges list.',
      default: SPEC_DEFAULTS.grantAllPrivileges,
    },
    settings: {
      type: 'object',
      description:
        'Values set on the plugin (`docker plugin set`). Maps are compared as maps, args as an ordered list; a change is applied by disabling the plugin, setting the values and enabling it again.',
      additionalProperties: false,
      properties: {
        env: {
          type: 'object',
          description:
            'Environment variables the plugin declares as settable, by name. Values must be strings (quote numbers and booleans), or `{valueFrom: {file: /path}}` (file mode) / `{valueFrom: {secretKeyRef: {name, key}}}` (Kubernetes mode) for a secret, which plugctl never shows, logs or stores: status and inventory keep a salted hash of it.',
          additionalProperties: envValueSchema,
        },
        args: {
          type: 'array',
          description: 'Arguments passed to the plugin entrypoint, replacing the settable args it declares.',
          items: { type: 'string', description: 'One argument.' },
        },
        mounts: pathMap(
          'Host source of each settable mount the plugin declares, by mount name.',
          'Absolute host path bound as the mount source.',
        ),
        devices: pathMap(
          'Host path of each settable device the plugin declares, by device name.',
          'Absolute host path of the device, e.g. /dev/fuse.',
        ),
      },
    },
    upgrade: {
      type: 'object',
      description: 'How the installed plugin follows its declared remote.',
      additionalProperties: false,
      properties: {
        policy: {
          type: 'string',
          description:
            'OnSpecChange: upgrade only when spec.remote changes. TrackTag: also upgrade when the tag in spec.remote is moved to new content in the registry. Never: install once, never upgrade in place.',
          enum: ['OnSpecChange', 'TrackTag', 'Never'],
          default: SPEC_DEFAULTS.upgradePolicy,
        },
      },
    },
    inUse: {
      type: 'string',
      description:
        'What to do when a change requires disabling a plugin that volumes or containers are using. Wait: never disrupt; retry until it is no longer in use. Force: disable it anyway.',
      enum: ['Wait', 'Force'],
      default: SPEC_DEFAULTS.inUse,
    },
    enableTimeoutSeconds: {
      type: 'integer',
      description: 'Seconds to wait for the plugin to start when enabling it before the attempt fails.',
      minimum: 1,
      maximum: 3600,
      default: SPEC_DEFAULTS.enableTimeoutSeconds,
    },
    nodeSelector: {
      type: 'object',
      description:
        'Hosts this plugin applies to, selected by node labels (Kubernetes label selector semantics; both parts must match). Absent or empty selects every host.',
      additionalProperties: false,
      properties: {
        matchLabels: stringMap(
          'Labels a host must carry, each with exactly this value.',
          'Required label value.',
        ),
        matchExpressions: {
          type: 'array',
          description: 'Label requirements a host must all satisfy (at most 32).',
          maxItems: 32,
          items: {
            type: 'object',
            description: 'One label requirement.',
            additionalProperties: false,
            required: ['key', 'operator'],
            properties: {
              key: { type: 'string', description: 'Label key the requirement applies to.', minLength: 1 },
              operator: {
                type: 'string',
                description:
                  "In / NotIn: the label's value is / is not one of values. Exists / DoesNotExist: the label is present / absent.",
                enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
                maxLength: 12,
              },
              values: {
                type: 'array',
                description:
                  'Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.',
                items: { type: 'string', description: 'A label value.' },
              },
            },
            anyOf: [
              {
                required: ['values'],
                properties: {
                  operator: { enum: ['In', 'NotIn'] },
                  values: { type: 'array', minItems: 1 },
                },
              },
              {
                properties: {
                  operator: { enum: ['Exists', 'DoesNotExist'] },
                  values: { type: 'array', maxItems: 0 },
                },
              },
            ],
            'x-plugctl-message':
              'values must list at least one value for operator In or NotIn, and must be empty for Exists or DoesNotExist',
          },
        },
      },
    },
    dependsOn: {
      type: 'array',
      description:
        'metadata.name of other DockerPlugins that must be Ready on the same host before this one is enabled.',
      'x-kubernetes-list-type': 'set',
      items: {
        type: 'string',
        description: 'Name of a DockerPlugin.',
        maxLength: 63,
        pattern: DNS_LABEL.pattern,
      },
    },
    suspend: {
      type: 'boolean',
      description:
        'Stop reconciling this plugin: nothing is installed, changed or removed for it until suspend is false again. Status keeps being reported.',
      default: SPEC_DEFAULTS.suspend,
    },
    build: {
      type: 'object',
      description:
        'Build the plugin on the host instead of pulling it, as `docker plugin create` does. Exactly one of remote and build is required; the local name is spec.alias, or else metadata.name with the tag `latest`.',
      additionalProperties: false,
      required: ['context'],
      properties: {
        context: {
          type: 'string',
          description:
            'A directory holding config.json and rootfs/, or a tar (optionally gzip-compressed) of one, relative to the file that declares the document. When its content changes, the plugin is rebuilt (removed and created again) and its settings re-applied.',
          minLength: 1,
        },
      },
    },
    healthCheck: {
      type: 'object',
      description:
        "How plugctl checks that an enabled plugin answers: it calls Plugin.Activate on the plugin's socket after enabling it and then every periodSeconds. Ready is True only while the check passes; after failureThreshold failures in a row the plugin is restarted (disabled and enabled again), with a backoff per plugin.",
      additionalProperties: false,
      properties: {
        enabled: {
          type: 'boolean',
          description: 'false: never probe this plugin; Ready then only means it is enabled.',
          default: SPEC_DEFAULTS.healthCheckEnabled,
        },
        periodSeconds: {
          type: 'integer',
          description: 'Seconds between two checks of an enabled plugin.',
          minimum: 1,
          maximum: 3600,
          default: SPEC_DEFAULTS.healthPeriodSeconds,
        },
        timeoutSeconds: {
          type: 'integer',
          description: 'Seconds the plugin has to answer one check.',
          minimum: 1,
          maximum: 60,
          default: SPEC_DEFAULTS.healthTimeoutSeconds,
        },
        failureThreshold: {
          type: 'integer',
          description: 'Failed checks in a row after which the plugin is Unresponsive and restarted.',
          minimum: 1,
          maximum: 100,
          default: SPEC_DEFAULTS.healthFailureThreshold,
        },
      },
    },
    rollout: {
      type: 'object',
      description:
        'Kubernetes mode: how a change that disrupts the plugin (disabling it for an upgrade, a settings change or a rebuild) rolls across the selected nodes. First installs are not disruptions.',
      additionalProperties: false,
      properties: {
        maxUnavailable: {
          description:
            'How many selected nodes may have the plugin disrupted at the same time, across the cluster: a number of nodes (at least 1) or a percentage of the selected nodes (rounded down, but at least 1), as for DaemonSets.',
          'x-kubernetes-int-or-string': true,
          anyOf: [
            { type: 'integer', minimum: 1 },
            { type: 'string', pattern: PERCENT.pattern },
          ],
          default: SPEC_DEFAULTS.maxUnavailable,
          'x-plugctl-message':
            'must be a number of nodes (at least 1) or a percentage of the selected nodes from "1%" to "100%", such as "25%"',
        },
      },
    },
    pullSecretName: {
      type: 'string',
      description:
        "Kubernetes mode: name of a Secret of type kubernetes.io/dockerconfigjson in the agent's own namespace holding the credentials to pull spec.remote. Never logged and never copied into status. Ignored in file mode, where the Docker credential files are used.",
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN.pattern,
    },
  },
  not: {
    required: ['grantAllPrivileges', 'privileges'],
    properties: {
      grantAllPrivileges: { enum: [true] },
      privileges: { type: 'array', minItems: 1 },
    },
  },
  'x-plugctl-message':
    'grantAllPrivileges: true cannot be combined with a non-empty privileges list: either list the exact privileges or grant all',
} as const;

/** The JSON Schema (draft-07 subset that is also a Kubernetes structural schema) of a DockerPlugin. */
export const dockerPluginSchema = {
  type: 'object',
  description:
    'DockerPlugin declares a Docker managed plugin that plugctl installs, configures, enables and keeps converged on every matching host.',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: {
      type: 'string',
      description: `API group and version of the document. Must be ${API_VERSION}.`,
      enum: [API_VERSION],
    },
    kind: {
      type: 'string',
      description: `Kind of the document. Must be ${KIND}.`,
      enum: [KIND],
    },
    metadata: metadataSchema,
    spec: specSchema,
    // Files only carry status along (as `kubectl get -o yaml` prints it); the CRD gets its real schema,
    // dockerPluginStatusSchema (status.ts), from crd-gen.ts, because in a cluster plugctl writes it.
    status: {
      type: 'object',
      description:
        'Observed state, written by plugctl in Kubernetes mode (the fleet summary). Ignored on input and preserved as is.',
      'x-kubernetes-preserve-unknown-fields': true,
    },
  },
  // Exactly one of spec.remote and spec.build. It sits here rather than on spec, whose junctor and
  // rule are about privileges, so each junctor is paired with one message.
  oneOf: [
    { properties: { spec: { type: 'object', required: ['remote'], properties: { remote: {} } } } },
    { properties: { spec: { type: 'object', required: ['build'], properties: { build: {} } } } },
  ],
  'x-plugctl-message': 'exactly one of spec.remote and spec.build is required',
} as const;

// Compile-time guard that the schema and types.ts name the same fields: adding a field to one and not
// the other fails the type check here rather than silently at run time.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type SpecKeysMatch = Same<keyof typeof specSchema.properties, keyof DockerPluginSpec>;
type MetaKeysMatch = Same<keyof typeof metadataSchema.properties, keyof ObjectMeta>;
const schemaMatchesTypes: [SpecKeysMatch, MetaKeysMatch] = [true, true];
void schemaMatchesTypes;
