/**
 * The catalogue of every error code plugctl raises or records: each code once, with the failure kind
 * it is retried by, the part of plugctl it comes from and a one-line hint saying what to do.
 * `PlugctlError.code` is typed by it, a PlugctlError's kind defaults to its code's kind here, the
 * controller's sticky stalls are read from it, and docs/errors.md is generated from it (`make docs`).
 *
 * A code is a stable contract: status.json, `plugctl get` and scripts match on it. Rename none; add
 * new ones here with their kind and hint, and regenerate the docs.
 */

/**
 * How a failure is retried by the controller: `stalled` needs a human (not retried until the document
 * changes), `waiting` is checked again after a delay, `transient` backs off exponentially.
 */
export type FailureKind = 'stalled' | 'waiting' | 'transient';

/** The part of plugctl a code comes from; it groups docs/errors.md and narrows subclasses' codes. */
export type ErrorArea =
  'document' | 'command' | 'reconcile' | 'store' | 'engine' | 'embedded' | 'registry' | 'kube';

/**
 * One code. `hint` says what to do, in one line. `varies` says when a throw site passes another kind
 * than `kind` (the default). `sticky` (stalled codes only) keeps a stall until the document changes,
 * even when the host changes under it (the controller's resync and engine events do not retry it).
 */
export type ErrorCodeEntry = { area: ErrorArea; hint: string; varies?: string } & (
  { kind: 'stalled'; sticky?: true } | { kind: 'waiting' | 'transient' }
);

/** Every code, grouped by area in the order docs/errors.md lists them. */
export const ERROR_CODES = {
  // Loading and validating documents (load.ts, validate.ts, the file source). Reported per document
  // or file; while any document fails to load, nothing is pruned.
  PATH_NOT_FOUND: {
    area: 'document',
    kind: 'stalled',
    hint: 'A path given with -f does not exist: fix the path, or create it.',
  },
  READ_FAILED: {
    area: 'document',
    kind: 'stalled',
    hint: 'A path could not be read or is not a regular file or directory: fix its type or permissions.',
  },
  YAML_SYNTAX: {
    area: 'document',
    kind: 'stalled',
    hint: 'The file is not valid YAML: fix the syntax at the position given.',
  },
  UNKNOWN_FIELD: {
    area: 'document',
    kind: 'stalled',
    hint: 'The document has a field the schema does not know: remove it or fix its spelling.',
  },
  MISSING_FIELD: { area: 'document', kind: 'stalled', hint: 'A required field is missing: add it.' },
  INVALID_TYPE: {
    area: 'document',
    kind: 'stalled',
    hint: 'A field has the wrong type: give it the type the message names.',
  },
  INVALID_VALUE: {
    area: 'document',
    kind: 'stalled',
    hint: 'A field has a value the schema does not allow: use one the message names.',
  },
  DUPLICATE_ENTRY: {
    area: 'document',
    kind: 'stalled',
    hint: 'A list has two entries with the same key: keep one.',
  },
  RULE_VIOLATION: {
    area: 'document',
    kind: 'stalled',
    hint: 'A rule across fields is broken (e.g. both remote and build): change the fields as the message says.',
  },
  INVALID_DOCUMENT: {
    area: 'document',
    kind: 'stalled',
    hint: 'The object is not a valid DockerPlugin (every issue is listed): fix each one.',
  },
  INVALID_REFERENCE: {
    area: 'document',
    kind: 'stalled',
    hint: 'spec.remote (or a built plugin name) is not a valid reference: write [registry/]repository[:tag][@digest].',
  },
  LIMIT_EXCEEDED: {
    area: 'document',
    kind: 'stalled',
    hint: 'A YAML file or document exceeds a bound of controller/limits.ts (the message names it): split the file, or raise the bound.',
  },
  DUPLICATE_NAME: {
    area: 'document',
    kind: 'stalled',
    hint: 'Two documents share a metadata.name, so neither is applied: rename one.',
  },
  DUPLICATE_LOCAL_NAME: {
    area: 'document',
    kind: 'stalled',
    hint: 'Two documents install the same local plugin name, so neither is applied: give each a distinct spec.alias.',
  },
  WATCH_FAILED: {
    area: 'document',
    kind: 'stalled',
    hint: 'Watching a path failed, so changes may be missed: fix the cause (e.g. inotify limits) and restart plugctl run.',
  },

  // The command line.
  INVALID_NODE_LABEL: {
    area: 'command',
    kind: 'stalled',
    hint: '--node-labels or the labels file has an entry that is not a valid key=value label: fix it.',
  },
  INVALID_SET_NAME: {
    area: 'command',
    kind: 'stalled',
    hint: 'The apply set is not named, or not validly: give --set NAME (required with -f -), as plugctl get shows it.',
  },
  HOST_LABELS_UNREADABLE: {
    area: 'command',
    kind: 'transient',
    varies: 'stalled for a labels file that cannot be read',
    hint: "The host's labels (the engine's, or the labels file) could not be read; nothing is selected or removed until they can.",
  },
  MIRROR_CONFIG_INVALID: {
    area: 'command',
    kind: 'stalled',
    hint: 'registries.yaml or a --registry-mirror flag is not valid: fix the file or flag at the place the message names.',
  },
  EMBEDDED_STORE_REQUIRED: {
    area: 'command',
    kind: 'stalled',
    hint: 'create, push and gc work on the embedded store only: pass --store embedded.',
  },
  INVALID_SELECTOR: {
    area: 'command',
    kind: 'stalled',
    hint: "-l is not a label selector in kubectl's syntax: write terms like role=storage, env in (a,b), !gpu, separated by commas.",
  },
  INVALID_OUTPUT_FORMAT: {
    area: 'command',
    kind: 'stalled',
    hint: '-o names no known format: use table, wide, name, json, yaml or jsonpath=TEMPLATE.',
  },
  OBJECT_NOT_FOUND: {
    area: 'command',
    kind: 'stalled',
    hint: 'No plugin, document or status has that name: plugctl get lists the names there are.',
  },
  PLUGIN_MANAGED: {
    area: 'command',
    kind: 'stalled',
    hint: 'plugctl rm refuses a plugin plugctl manages (the controller would reinstall it): delete its document, run plugctl prune --set, or pass --force.',
  },
  CONTROLLER_NOT_RUNNING: {
    area: 'command',
    kind: 'stalled',
    hint: 'No plugctl run serves this --state-dir (no controller.json, or it does not answer): start plugctl run, or converge once with plugctl apply.',
  },
  WAIT_TIMEOUT: {
    area: 'command',
    kind: 'stalled',
    hint: 'The condition was not met, or the reconcile did not finish, within --timeout: plugctl get shows where each plugin stands.',
  },

  // Planning, applying and the controller (reconcile/).
  NAME_CONFLICT: {
    area: 'reconcile',
    kind: 'stalled',
    hint: 'A plugin with the declared name is installed but not managed by plugctl (or replaced by hand): remove it, set spec.alias, or apply with --take-ownership.',
  },
  OWNERSHIP_CONFLICT: {
    area: 'reconcile',
    kind: 'stalled',
    hint: 'Another apply set manages the declared plugin: remove the document from one set, or apply with --take-ownership.',
  },
  DEPENDENCY_NOT_READY: {
    area: 'reconcile',
    kind: 'waiting',
    hint: 'A plugin in spec.dependsOn is not Ready yet: plugctl checks again; fix that plugin if it stays so.',
  },
  ROLLOUT_WAITING: {
    area: 'reconcile',
    kind: 'waiting',
    hint: 'spec.rollout.maxUnavailable nodes are already changing this plugin: the node takes its turn when one of them is Ready again or its slot expires.',
  },
  FACTS_MISSING: {
    area: 'reconcile',
    kind: 'transient',
    hint: 'The remote or build context has not been looked up yet: nothing to do, the next pass looks it up.',
  },
  PLUGIN_IN_USE: {
    area: 'reconcile',
    kind: 'waiting',
    hint: 'Volumes, networks or containers use the plugin: free it (plugctl checks again), or set inUse: Force to disrupt them.',
  },
  PLUGIN_UNRESPONSIVE: {
    area: 'reconcile',
    kind: 'waiting',
    hint: "The enabled plugin does not answer Plugin.Activate on its socket: plugctl restarts it with backoff; read the plugin's log (dockerd log, or plugin.log in the embedded store) if it keeps failing.",
  },
  PLUGIN_PROBE_UNAVAILABLE: {
    area: 'reconcile',
    kind: 'waiting',
    hint: "plugctl cannot reach the plugin's socket (/run/docker/plugins not visible or not root's): in a container mount it from the host and run as root, or set healthCheck.enabled: false.",
  },
  SETTINGS_INVALID: {
    area: 'reconcile',
    kind: 'stalled',
    hint: "spec.settings cannot be applied to the plugin's config: declare only what its config.json makes settable.",
  },
  PLUGIN_VANISHED: {
    area: 'reconcile',
    kind: 'transient',
    hint: 'The plugin was removed by someone else while plugctl changed it: nothing to do, the next pass installs it again.',
  },
  UPGRADE_ROLLED_BACK: {
    area: 'reconcile',
    kind: 'stalled',
    sticky: true,
    hint: 'The new version failed and the previous one runs again: fix the new version, or change the document to retry.',
  },
  ROLLBACK_FAILED: {
    area: 'reconcile',
    kind: 'stalled',
    sticky: true,
    hint: 'The new version failed and so did the rollback; the plugin is disabled: fix the plugin or the document and apply again.',
  },
  SECRET_UNAVAILABLE: {
    area: 'reconcile',
    kind: 'transient',
    hint: 'A secret in spec.settings.env (valueFrom) could not be read: create the file or Secret, or fix its permissions; only this plugin waits, and it is retried.',
  },
  SECRET_PATH_FORBIDDEN: {
    area: 'reconcile',
    kind: 'stalled',
    hint: 'A valueFrom.file secret is outside the allowed directories (--secrets-dir, default /etc/plugctl/secrets), symlinks resolved: move it there or allow its directory.',
  },
  SECRET_SOURCE_UNSUPPORTED: {
    area: 'reconcile',
    kind: 'stalled',
    hint: 'The document reads a secret from a source this mode cannot read: use valueFrom.file in file mode, valueFrom.secretKeyRef (a Secret in the agent namespace) in Kubernetes mode.',
  },
  PIN_CONTENT_MISMATCH: {
    area: 'reconcile',
    kind: 'stalled',
    sticky: true,
    hint: 'The tag moved during the pull, so the content was not the pinned digest and was removed: update the pin or re-tag the pinned content.',
  },
  REGISTRY_ERROR: {
    area: 'reconcile',
    kind: 'transient',
    hint: 'Looking up the remote failed without a code of its own: it is retried; if it persists, report it with the log.',
  },
  STATE_UNREADABLE: {
    area: 'reconcile',
    kind: 'transient',
    hint: "The inventory under --state-dir could not be read: fix the file's permissions or the disk.",
  },
  STATE_CORRUPT: {
    area: 'reconcile',
    kind: 'stalled',
    hint: 'The inventory under --state-dir is not valid: restore it from a backup, or remove it (plugctl then prunes nothing it listed).',
  },
  UNEXPECTED: {
    area: 'reconcile',
    kind: 'transient',
    hint: 'A failure without a code (a bug in plugctl): it is retried with backoff; report it with the log.',
  },

  // Both stores: the Store contract's codes mean the same in the docker and the embedded store.
  NOT_FOUND: {
    area: 'store',
    kind: 'stalled',
    hint: 'No plugin by that name or ID (or the engine answered 404): check the name; an upgrade needs the plugin installed.',
  },
  PLUGIN_EXISTS: {
    area: 'store',
    kind: 'transient',
    hint: 'A plugin with that name was installed meanwhile (another installer): nothing to do, the next pass sees it.',
  },
  PLUGIN_ENABLED: {
    area: 'store',
    kind: 'waiting',
    hint: 'The change needs the plugin disabled but it is enabled (enabled by someone meanwhile?): plugctl plans again later.',
  },
  SETTING_REJECTED: {
    area: 'store',
    kind: 'stalled',
    hint: "The plugin's config does not allow that setting: declare only what its config.json marks settable.",
  },
  ENABLE_FAILED: {
    area: 'store',
    kind: 'transient',
    varies: "stalled when the embedded store's record of the plugin's config is invalid",
    hint: "The plugin did not start: read its output (dockerd's log, or plugin.log in the embedded store) and fix its settings or content.",
  },
  PRIVILEGES_MISMATCH: {
    area: 'store',
    kind: 'stalled',
    hint: 'The grants differ from what the plugin asks for: set spec.privileges to the listed ones, or set grantAllPrivileges.',
  },
  INVALID_PLUGIN_NAME: {
    area: 'store',
    kind: 'stalled',
    hint: 'The local plugin name is not REPOSITORY[:TAG]: fix spec.alias, or the name given.',
  },
  CONTEXT_INVALID: {
    area: 'store',
    kind: 'stalled',
    varies: 'transient when reading the context failed without a code of its own',
    hint: 'The build context lacks config.json or rootfs/, or the store refused it: fix the context.',
  },
  PLUGIN_CONFIG_INVALID: {
    area: 'store',
    kind: 'stalled',
    hint: "The plugin's config.json does not have Docker's shape (Docker would refuse it too): fix the plugin's config.json.",
  },

  // The docker store: the Docker Engine API.
  INVALID_DOCKER_HOST: {
    area: 'engine',
    kind: 'stalled',
    hint: '--docker-host or DOCKER_HOST is neither unix:///absolute/path nor tcp://host:port: fix it.',
  },
  ENGINE_UNREACHABLE: {
    area: 'engine',
    kind: 'transient',
    hint: 'dockerd does not answer at the address: start it, or point plugctl at it with --docker-host or DOCKER_HOST.',
  },
  ENGINE_TIMEOUT: {
    area: 'engine',
    kind: 'transient',
    hint: 'dockerd did not answer in time: check that it is healthy; retried with backoff.',
  },
  ENGINE_TOO_OLD: {
    area: 'engine',
    kind: 'stalled',
    hint: "The engine's API is older than managed plugins need: upgrade dockerd.",
  },
  BAD_RESPONSE: {
    area: 'engine',
    kind: 'transient',
    hint: "The engine's answer is not what its API promises (invalid JSON, a plugin without ID): check dockerd; retried.",
  },
  BAD_REQUEST: {
    area: 'engine',
    kind: 'stalled',
    hint: 'The engine refused the request (HTTP 400): read its message; the document asks for something the engine does not allow.',
  },
  UNAUTHORIZED: {
    area: 'engine',
    kind: 'stalled',
    hint: 'The engine refused the request (HTTP 401): check the authorization plugin or proxy in front of dockerd.',
  },
  FORBIDDEN: {
    area: 'engine',
    kind: 'stalled',
    hint: "The engine forbade the request (HTTP 403): check dockerd's authorization plugins.",
  },
  CONFLICT: {
    area: 'engine',
    kind: 'waiting',
    hint: 'The engine reports a conflicting state (HTTP 409): plugctl checks again once the other operation is over.',
  },
  ENGINE_ERROR: {
    area: 'engine',
    kind: 'transient',
    hint: "The engine failed (HTTP 500, or another 5xx): read its message and dockerd's log; retried with backoff.",
  },
  ENGINE_UNAVAILABLE: {
    area: 'engine',
    kind: 'transient',
    hint: 'The engine is unavailable (HTTP 503): wait for dockerd to be ready; retried with backoff.',
  },
  ENGINE_UNEXPECTED_STATUS: {
    area: 'engine',
    kind: 'stalled',
    hint: 'The engine answered with an HTTP status plugctl has no code for (named in the message): read its message.',
  },
  EVENTS_CLOSED: {
    area: 'engine',
    kind: 'transient',
    hint: 'The engine closed its event stream (did dockerd restart?): nothing to do, plugctl reconnects.',
  },
  PULL_FAILED: {
    area: 'engine',
    kind: 'transient',
    varies:
      "stalled when the engine's message says not found, unauthorized, denied, an invalid reference or incorrect privileges",
    hint: "The engine could not pull or upgrade the plugin: read the engine's message; fix the reference or credentials if it names them.",
  },
  DIGEST_UNSUPPORTED_BY_ENGINE: {
    area: 'engine',
    kind: 'stalled',
    hint: 'dockerd before 25.0.4 crashes on digest references (moby#47299): pin as repo:tag@digest, or upgrade dockerd.',
  },
  MULTI_ARCH_UNSUPPORTED_BY_ENGINE: {
    area: 'engine',
    kind: 'stalled',
    hint: 'A multi-platform index needs a digest reference dockerd before 25.0.4 cannot take: upgrade dockerd, use the embedded store, or a single-platform tag.',
  },
  PIN_MISMATCH: {
    area: 'engine',
    kind: 'stalled',
    hint: 'The tag no longer points at the pinned digest and this engine pulls only by tag: update the pin, or re-tag the pinned content.',
  },

  // The embedded store: plugctl's own plugin manager, and the plugins it runs with runc.
  STORE_LOCKED: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'Another plugctl process manages this store root: when it is plugctl run, use plugctl reconcile to converge now; otherwise stop it, or use another --root.',
  },
  STORE_CLOSED: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'The store was closed (plugctl is shutting down): nothing to do.',
  },
  STORE_READ_ONLY: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'A change was asked of a store opened read-only (by a command that only reads, e.g. get): change it with apply or run.',
  },
  STORE_IO: {
    area: 'embedded',
    kind: 'transient',
    hint: 'The host file system failed (disk full, permissions, read-only): free space or fix the permissions under --root.',
  },
  AMBIGUOUS_ID: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'An ID prefix matches several plugins: give more of the ID, or the name.',
  },
  LAYER_UNSAFE: {
    area: 'embedded',
    kind: 'stalled',
    hint: "A layer would write outside the plugin's rootfs (.., absolute path, link escape): the plugin is unsafe; do not use it.",
  },
  LAYER_INVALID: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'A layer is not a well-formed tar (or gzip of one): rebuild or push the plugin again.',
  },
  LAYER_UNSUPPORTED: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'A layer uses a compression or media type plugctl cannot unpack (e.g. zstd): push the plugin with gzip layers.',
  },
  GZIP_BOMB: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'A layer inflates beyond the size or ratio cap: the plugin is unsafe or far too large; do not use it.',
  },
  BLOB_MISSING: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'Content the store needs (to push) is not in its blob store: pull the plugin again with plugctl, then push.',
  },
  RUNC_NOT_FOUND: {
    area: 'embedded',
    kind: 'stalled',
    hint: 'runc is not installed: install it (apt-get install runc).',
  },
  PLUGIN_ID_INVALID: {
    area: 'embedded',
    kind: 'stalled',
    hint: "A plugin ID in the store is not valid (damaged records?): remove the plugin's directory under --root and pull it again.",
  },
  PLUGIN_SPEC_INVALID: {
    area: 'embedded',
    kind: 'stalled',
    hint: "The plugin's config cannot become a runtime spec (e.g. a socket outside /run/docker/plugins): fix the plugin's config.",
  },
  PLUGIN_SOCKET_PATH_TOO_LONG: {
    area: 'embedded',
    kind: 'stalled',
    hint: "The plugin's socket path exceeds what a unix socket allows: use a shorter sockets root.",
  },
  PLUGIN_START_FAILED: {
    area: 'embedded',
    kind: 'transient',
    hint: "The plugin exited or runc could not start it: read the plugin's plugin.log and fix its settings or content.",
  },
  PLUGIN_SOCKET_TIMEOUT: {
    area: 'embedded',
    kind: 'transient',
    hint: 'The plugin did not open its socket in time: raise spec.enableTimeoutSeconds, or fix its Interface.Socket.',
  },
  PLUGIN_MOUNT_FAILED: {
    area: 'embedded',
    kind: 'transient',
    hint: "A mount for the plugin failed: check that util-linux's mount is installed and plugctl runs as root.",
  },
  PLUGIN_RUNTIME_FAILED: {
    area: 'embedded',
    kind: 'transient',
    hint: "runc failed or did not finish: check the host's load and runc's state; retried with backoff.",
  },

  // Registries: plugctl's own OCI distribution client. Messages name the registry and repository and
  // never carry a credential.
  MIRRORS_UNAVAILABLE: {
    area: 'registry',
    kind: 'transient',
    hint: 'Neither the upstream registry nor any of its mirrors (registries.yaml, --registry-mirror) could serve the plugin: the message names each and why; fix one of them.',
  },
  REGISTRY_UNREACHABLE: {
    area: 'registry',
    kind: 'transient',
    hint: 'The registry could not be reached (refused, reset, TLS failure) after retries: check that it is up and reachable.',
  },
  REGISTRY_TIMEOUT: {
    area: 'registry',
    kind: 'transient',
    hint: 'The registry sent no response, or its body went silent, within the timeout: retried with backoff.',
  },
  REGISTRY_SERVER_ERROR: {
    area: 'registry',
    kind: 'transient',
    hint: 'The registry answered 5xx after retries: retried later; check the registry if it persists.',
  },
  REGISTRY_RATE_LIMITED: {
    area: 'registry',
    kind: 'transient',
    hint: 'The registry rate-limits the requests (429) after retries: retried later; log in to raise the limit.',
  },
  REGISTRY_BODY_TRUNCATED: {
    area: 'registry',
    kind: 'transient',
    hint: 'The connection closed before the announced size: retried with backoff.',
  },
  REGISTRY_AUTH_FAILED: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The registry refused the credentials (401) or needs some: run docker login REGISTRY, or configure a credential helper.',
  },
  REGISTRY_ACCESS_DENIED: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The account may not pull this repository (403): grant it access, or use another account.',
  },
  REGISTRY_TOKEN_FAILED: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The token service gave no usable token (bad or plain-http realm, bad answer): fix the registry auth set-up; a token service that is down or answers 5xx is REGISTRY_UNREACHABLE or REGISTRY_SERVER_ERROR (transient).',
  },
  MANIFEST_NOT_FOUND: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The repository or tag does not exist (404): check the reference, and that the account may see it.',
  },
  BLOB_NOT_FOUND: {
    area: 'registry',
    kind: 'stalled',
    hint: 'A blob the manifest names does not exist (404): push the plugin again.',
  },
  DIGEST_MISMATCH: {
    area: 'registry',
    kind: 'stalled',
    hint: 'Content does not hash to the digest it was asked for: the registry serves wrong bytes; push the content again.',
  },
  SIZE_MISMATCH: {
    area: 'registry',
    kind: 'stalled',
    hint: 'Content is longer than its descriptor says: push the content again.',
  },
  MANIFEST_TOO_LARGE: {
    area: 'registry',
    kind: 'stalled',
    hint: 'A manifest or config is over the size cap (they are a few KiB): check the reference points at a plugin.',
  },
  MANIFEST_INVALID: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The manifest is not JSON, has an unsupported media type or a malformed descriptor: check the reference points at a plugin.',
  },
  PLATFORM_NOT_FOUND: {
    area: 'registry',
    kind: 'stalled',
    hint: "The index has no manifest for this host's os/architecture: push one, or reference a tag that has it.",
  },
  REGISTRY_REDIRECT_INVALID: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The registry redirected badly (too often, without Location, or to plain http on an https host): fix the registry.',
  },
  REGISTRY_BAD_RESPONSE: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The registry answered with an unexpected status (400, 405, ...): read the summary in the message; check the registry.',
  },
  CREDENTIALS_INVALID: {
    area: 'registry',
    kind: 'stalled',
    hint: 'The Docker credential file or a credential helper failed: fix the config.json under DOCKER_CONFIG (~/.docker) or the helper.',
  },

  // The Kubernetes API server (controller/kube/): configuration, RBAC, conflicts, availability.
  KUBE_CONFIG_NOT_FOUND: {
    area: 'kube',
    kind: 'stalled',
    hint: 'No cluster configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account.',
  },
  KUBE_CONFIG_INVALID: {
    area: 'kube',
    kind: 'stalled',
    hint: 'The kubeconfig or the service-account files cannot be read or make no sense: fix the named file or entry.',
  },
  KUBE_CONFIG_UNSUPPORTED: {
    area: 'kube',
    kind: 'stalled',
    hint: 'The kubeconfig asks for a legacy auth provider, a proxy, or an exec plugin returning certificates: use an exec token plugin or a direct address.',
  },
  KUBE_UNAUTHORIZED: {
    area: 'kube',
    kind: 'transient',
    hint: 'The API server rejected the credentials (or the exec plugin failed); tokens are read again automatically.',
  },
  KUBE_FORBIDDEN: {
    area: 'kube',
    kind: 'stalled',
    hint: 'RBAC does not allow the request: grant the verb and resource the message names (manifests/ holds the shipped RBAC).',
  },
  KUBE_NOT_FOUND: {
    area: 'kube',
    kind: 'waiting',
    hint: 'The object, or its resource type, is absent: install the CRDs (kubectl apply -f crds/).',
  },
  KUBE_CONFLICT: {
    area: 'kube',
    kind: 'transient',
    hint: 'The object changed since it was read, or another field manager owns the field; read again and retry (automatic).',
  },
  KUBE_GONE: {
    area: 'kube',
    kind: 'transient',
    hint: 'The resourceVersion expired; the informer lists again (automatic).',
  },
  KUBE_INVALID: {
    area: 'kube',
    kind: 'stalled',
    hint: 'The API server rejected the object as invalid; the message names the field.',
  },
  KUBE_THROTTLED: {
    area: 'kube',
    kind: 'transient',
    hint: 'The API server asked to slow down; Retry-After is honoured.',
  },
  KUBE_SERVER_ERROR: {
    area: 'kube',
    kind: 'transient',
    hint: 'The API server failed (5xx, or an ERROR watch event); backed off and retried.',
  },
  KUBE_UNREACHABLE: {
    area: 'kube',
    kind: 'transient',
    hint: 'The API server could not be reached or did not answer in time; check its address and the network.',
  },
  KUBE_BAD_RESPONSE: {
    area: 'kube',
    kind: 'transient',
    hint: 'The answer was not Kubernetes API JSON: check that the address is an API server.',
  },
  KUBE_NODE_NOT_FOUND: {
    area: 'kube',
    kind: 'waiting',
    hint: "The agent's Node object does not exist: check --node-name or NODE_NAME (the pod's spec.nodeName); nothing is decided until it appears.",
  },
  PULL_SECRET_NOT_FOUND: {
    area: 'kube',
    kind: 'waiting',
    hint: "spec.pullSecretName names a Secret that is not in the agent's namespace (or RBAC hides it): create it there.",
  },
  PULL_SECRET_INVALID: {
    area: 'kube',
    kind: 'stalled',
    hint: 'The pull Secret is not of type kubernetes.io/dockerconfigjson or its .dockerconfigjson is not a Docker config: recreate it with kubectl create secret docker-registry.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

/** A code of the catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of one area (e.g. the registry client's). */
export type ErrorCodeOf<A extends ErrorArea> = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C]['area'] extends A ? C : never;
}[ErrorCode];

/** The kind a failure with `code` has unless its throw site says otherwise. */
export function defaultKind(code: ErrorCode): FailureKind {
  return ERROR_CODES[code].kind;
}

/**
 * Whether a stall with `code` holds until the document changes. Takes any string: the code may come
 * back from status.json, written by another version of plugctl.
 */
export function isStickyStall(code: string): boolean {
  if (!Object.hasOwn(ERROR_CODES, code)) return false;
  const entry: ErrorCodeEntry = ERROR_CODES[code as ErrorCode];
  return entry.kind === 'stalled' && entry.sticky === true;
}
