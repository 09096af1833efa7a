// storage.mjs - what the page keeps in the browser: the finished runs (settings and before/after reports, for
// "Compare runs") in IndexedDB, so they outlive a reload; in memory where IndexedDB is unavailable. Nothing else is
// stored (no data file, no model).
import { runRecord } from './compare.mjs';

const DB = 'embedtune-page', STORE = 'runs';

function idb() {
  return new Promise((resolve) => {
    if (typeof indexedDB === 'undefined') { resolve(null); return; }
    let req;
    try { req = indexedDB.open(DB, 1); } catch { resolve(null); return; }
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
  });
}

/** The saved runs: {list() -> runs oldest first, add(run without id) -> run, clear()}. */
export async function openRunStore() {
  const db = await idb();
  const mem = [];
  const tx = (mode, fn) => new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode), s = t.objectStore(STORE);
    const r = fn(s);
    t.oncomplete = () => resolve(r?.result);
    t.onerror = () => reject(t.error);
  });
  const list = async () => (db ? (await tx('readonly', (s) => s.getAll())) || [] : mem.slice()).sort((x, y) => x.id - y.id);
  return {
    persistent: !!db,
    list,
    async add(run) {
      const all = await list();
      const rec = runRecord({ ...run, id: all.length ? all[all.length - 1].id + 1 : 1 });
      if (db) await tx('readwrite', (s) => s.put(rec)); else mem.push(rec);
      return rec;
    },
    async clear() { if (db) await tx('readwrite', (s) => s.clear()); else mem.length = 0; },
  };
}
