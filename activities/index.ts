import type { Database } from '../src/store/database';

/**
 * Activities are created with their dependencies injected, so the worker, tests and the demo wire them to
 * the same real Postgres and providers without globals.
 */
export interface ActivityDeps {
  db: Database;
}

export function createActivities(deps: ActivityDeps) {
  return {
    /** Reads one route's routing state (or null when the route does not exist). */
    async describeRoute(route: string): Promise<{ route: string; exists: boolean; version: number | null }> {
      const { rows } = await deps.db.pool.query<{ version: string }>('SELECT version FROM routes WHERE name = $1', [
        route,
      ]);
      return { route, exists: rows.length > 0, version: rows.length ? Number(rows[0].version) : null };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
