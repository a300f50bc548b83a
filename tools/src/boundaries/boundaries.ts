/**
 * Module boundaries: who may import whom (CONVENTIONS.md, "The tree is the architecture").
 * Each nx project declares tags in its package.json (`nx.tags`); this check reads every
 * TypeScript file of every project, finds what it imports (package names and relative paths
 * that leave the project), and holds each edge against the rules below.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface Project {
  name: string;
  packageName: string;
  root: string;
  tags: string[];
  dependencies: string[];
}

export interface Violation {
  file: string;
  line: number;
  from: string;
  to: string;
  rule: string;
}

/** May a project with tags `from` import one with tags `to`? Returns the broken rule, or null. */
export function checkEdge(from: string[], to: string[]): string | null {
  const has = (tags: string[], t: string) => tags.includes(t);
  if (has(from, 'type:e2e')) return null;
  if (has(to, 'type:process')) return 'a process is never imported: processes talk over sockets, rings and shared memory';
  if (has(to, 'type:tool') || has(to, 'type:e2e')) return 'tools and tests are leaves: nothing imports them';
  if (has(from, 'type:abi')) return 'the public ABI library depends on nothing';
  if (has(from, 'scope:hardware') && !has(to, 'type:abi')) return 'the CPU library depends on nothing but the ABI';
  if (has(from, 'scope:guest') && (has(to, 'scope:host') || has(to, 'scope:hardware'))) {
    return 'guest-side code never imports host or hypervisor internals';
  }
  if (has(from, 'type:lib') && !(has(to, 'type:lib') || has(to, 'type:abi'))) return 'a library imports only libraries and the ABI';
  return null;
}

export function loadProjects(repoRoot: string): Project[] {
  const root = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces.map((ws) => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, ws, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      nx?: { name?: string; tags?: string[] };
    };
    return {
      name: pkg.nx?.name ?? pkg.name,
      packageName: pkg.name,
      root: resolve(repoRoot, ws),
      tags: pkg.nx?.tags ?? [],
      dependencies: Object.keys(pkg.dependencies ?? {}),
    };
  });
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;

function* tsFiles(dir: string, skip: Set<string>): Generator<string> {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'build' || entry.startsWith('.')) continue;
    const p = join(dir, entry);
    if (skip.has(p)) continue;
    const st = statSync(p);
    if (st.isDirectory()) yield* tsFiles(p, skip);
    else if (/\.(ts|mts|mjs|js)$/.test(entry)) yield p;
  }
}

/** The project that owns a path: the one with the deepest root containing it. */
function owner(projects: Project[], path: string): Project | undefined {
  let best: Project | undefined;
  for (const p of projects) {
    if ((path === p.root || path.startsWith(p.root + sep)) && (!best || p.root.length > best.root.length)) best = p;
  }
  return best;
}

export function checkBoundaries(repoRoot: string): { projects: Project[]; violations: Violation[]; edges: number } {
  const projects = loadProjects(repoRoot);
  const byPackage = new Map(projects.map((p) => [p.packageName, p]));
  const violations: Violation[] = [];
  let edges = 0;
  for (const project of projects) {
    const nested = new Set(projects.filter((p) => p !== project && p.root.startsWith(project.root + sep)).map((p) => p.root));
    if (!existsSync(project.root)) continue;
    for (const file of tsFiles(project.root, nested)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(IMPORT_RE)) {
        const spec = m[1]!;
        let target: Project | undefined;
        if (spec.startsWith('.')) {
          target = owner(projects, resolve(dirname(file), spec));
        } else {
          const pkgName = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          target = byPackage.get(pkgName);
          if (target && target !== project && !project.dependencies.includes(pkgName)) {
            violations.push(at(file, text, m.index!, project, target, `imports ${pkgName} without declaring it in ${project.name}/package.json`));
          }
        }
        if (!target || target === project) continue;
        edges++;
        const rule = spec.startsWith('.')
          ? 'a relative import may not leave its project: import the package by name'
          : checkEdge(project.tags, target.tags);
        if (rule) violations.push(at(file, text, m.index!, project, target, rule));
      }
    }
  }
  return { projects, violations, edges };

  function at(file: string, text: string, index: number, from: Project, to: Project, rule: string): Violation {
    return { file: relative(repoRoot, file), line: text.slice(0, index).split('\n').length, from: from.name, to: to.name, rule };
  }
}
