/**
 * Aiming kills at the moments that matter: the crash-safety test watches the store's directories
 * with inotify (fs.watch) and kills the worker a few milliseconds after a given file appears, e.g.
 * the first blob committed by a pull, the upgrade's next config.json, set's temp config.json or a
 * `-removing` directory. Kills spread over time alone rarely land in these windows, which last
 * milliseconds out of hundreds.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';

/** What to watch: a file name in one of `dirs` that `match`es, then kill within [0, spanMs]. */
export interface Aim {
  /** what the aim is, for the report */
  what: string;
  dirs: string[];
  match: (dir: string, name: string) => boolean;
  spanMs: number;
}

/** A watch set up before the worker starts: `hit` resolves at the first matching event. */
export interface Watch {
  hit: Promise<void>;
  close(): void;
}

/** Starts watching (a directory that does not exist is not watched). */
export function watchFor(aim: Aim, armed: () => boolean = () => true): Watch {
  const watchers: FSWatcher[] = [];
  let resolve: () => void = () => undefined;
  const hit = new Promise<void>((done) => (resolve = done));
  for (const dir of aim.dirs) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        // A matching file the store writes while it opens (recovering what an earlier kill left)
        // is not the operation's commit: only a hit once the operation started counts.
        if (name !== null && aim.match(dir, name) && armed()) resolve();
      });
      watcher.on('error', () => undefined);
      watchers.push(watcher);
    } catch {
      // not there (yet): nothing to see in it
    }
  }
  return {
    hit,
    close() {
      for (const watcher of watchers) watcher.close();
    },
  };
}

/** `<root>/storage/blobs/sha256` */
export function blobDir(root: string): string {
  return join(root, 'storage', 'blobs', 'sha256');
}
