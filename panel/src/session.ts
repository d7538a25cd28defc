import { ApiClient } from './api-client';
import type { Principal } from './api-shapes';

const TOKEN_KEY = 'vmigrate.token';
const PROJECT_KEY = 'vmigrate.project';

/** Who is signed in: the token (kept for this browser tab only), who the API says it is, the project in view. */
export interface Session {
  api: ApiClient;
  principal: Principal;
  /** The project the panel works in (a user of several picks one; an admin of all may pick any or none). */
  project?: string;
}

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function savedProject(): string | undefined {
  return sessionStorage.getItem(PROJECT_KEY) ?? undefined;
}

export function saveProject(project: string | undefined): void {
  if (project) sessionStorage.setItem(PROJECT_KEY, project);
  else sessionStorage.removeItem(PROJECT_KEY);
}

/** Checks the token with the API (`GET /whoami`) before keeping it: a refused token is the API's problem, shown as is. */
export async function signIn(token: string, onExpired: () => void): Promise<Session> {
  const api = new ApiClient(token, onExpired);
  const principal = await api.get<Principal>('/whoami');
  sessionStorage.setItem(TOKEN_KEY, token);
  const projects = principal.projects === '*' ? [] : principal.projects;
  const kept = savedProject();
  const project = kept && (principal.projects === '*' || projects.includes(kept)) ? kept : projects[0];
  saveProject(project);
  return { api, principal, ...(project ? { project } : {}) };
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PROJECT_KEY);
}
