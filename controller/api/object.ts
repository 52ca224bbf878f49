/**
 * DockerPlugin objects read from the Kubernetes API, turned into the same LoadedDocument the file
 * loader produces: validated by the one schema, the reference parsed and the local name resolved, so
 * the planner cannot tell a cluster's document from a file's. An object has no file position: its
 * origin names it as `dockerplugin/NAME` (line 0), which is how load errors then print it.
 */
import { PlugctlError } from '../errors.ts';
import type { LoadError, ParsedDocument } from './load.ts';
import { defaultLocalName, parseReference } from './reference.ts';
import type { Reference } from './reference.ts';
import type { Origin } from './types.ts';
import { validateDocument } from './validate.ts';

/** The origin of an object named `name`: `dockerplugin/NAME`, without a position. */
export function objectOrigin(name: string): Origin {
  return { file: `dockerplugin/${name}`, line: 0, column: 0 };
}

/**
 * Validates one API object as a DockerPlugin document and resolves its reference and local name.
 * Returns the document (ready for resolveDuplicates) or every reason it is not one. `value` must not
 * carry server-only fields the schema does not know (the caller drops `status` and managedFields).
 */
export function loadObject(
  value: unknown,
  name: string,
): { document: ParsedDocument } | { errors: LoadError[] } {
  const origin = objectOrigin(name);
  const result = validateDocument(value);
  if (!result.ok) {
    return {
      errors: result.issues.map((i) => ({ origin, path: i.path, message: i.message, code: i.code })),
    };
  }
  const doc = result.doc;
  const { remote, build, alias } = doc.spec;
  // A built plugin is named like `docker plugin create NAME` names it: the alias, else metadata.name.
  const namePath =
    remote !== undefined ? 'spec.remote' : alias !== undefined ? 'spec.alias' : 'metadata.name';
  const failed = (path: string, error: unknown): { errors: LoadError[] } => ({
    errors: [
      {
        origin,
        path,
        message: error instanceof Error ? error.message : String(error),
        code: error instanceof PlugctlError ? error.code : 'INVALID_REFERENCE',
      },
    ],
  });
  let reference: Reference;
  try {
    reference = parseReference(remote ?? alias ?? doc.metadata.name);
  } catch (error) {
    return failed(namePath, error);
  }
  let localName: string;
  try {
    localName = defaultLocalName(alias === undefined ? reference : parseReference(alias));
  } catch (error) {
    return failed('spec.alias', error);
  }
  if (build !== undefined && reference.digest !== undefined)
    return failed(namePath, new Error('a built plugin is named REPOSITORY[:TAG], without a digest'));
  return {
    document: {
      doc,
      origin,
      localName,
      reference,
      nameOrigin: origin,
      localNameOrigin: origin,
      localNamePath: alias === undefined ? namePath : 'spec.alias',
    },
  };
}
