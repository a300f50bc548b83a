/** `npm run check:boundaries`: fails if any import crosses a forbidden project boundary. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkBoundaries } from './boundaries.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const { projects, violations, edges } = checkBoundaries(repoRoot);

// nx must see the same projects we check (each workspace folder is an nx project).
const nxProjects = JSON.parse(
  execFileSync(process.execPath, [fileURLToPath(import.meta.resolve('nx/bin/nx.js')), 'show', 'projects', '--json'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
  }),
) as string[];
const missing = projects.map((p) => p.name).filter((n) => !nxProjects.includes(n));

for (const v of violations) console.error(`${v.file}:${v.line}: ${v.from} -> ${v.to}: ${v.rule}`);
for (const n of missing) console.error(`nx does not see project ${n}`);
console.log(`boundaries: ${projects.length} projects, ${edges} cross-project imports checked, ${violations.length} violations`);
process.exit(violations.length || missing.length ? 1 : 0);
