// Bearer tokens for a server started with `--auth-token-file`. Pure helpers
// (no DOM access beyond the Storage passed in; unit-tested).
//
// Where a token comes from: `?token=…` in the page's URL (taken out of the
// address bar at once with history.replaceState, so it is neither left on
// screen nor bookmarked), or the token field the page shows when the server
// says it needs one. It is kept in sessionStorage (this tab only, gone when
// the tab closes), never in localStorage.
//
// How it travels: `authorization: Bearer TOKEN` on gRPC-Web and on the poll
// fetches; EventSource cannot set headers, so SSE carries `?access_token=TOKEN`
// (the server takes it there, and only on /api/v1/sse and /api/v1/poll).

/** The page URL parameter a token can be given in. */
export const TOKEN_PARAM = "token";
/** The query parameter the server reads a token from where headers can't go. */
export const ACCESS_TOKEN_PARAM = "access_token";
/** The sessionStorage key. */
export const TOKEN_STORAGE_KEY = "logtap.token";

/** A token as typed or pasted: trimmed; a pasted `Bearer ` prefix dropped; "" → null. */
export function normalizeToken(raw: string | null | undefined): string | null {
  if (raw == null) return null;
  const t = raw.trim().replace(/^bearer\s+/i, "").trim();
  return t ? t : null;
}

/**
 * Takes `?token=` (and a stray `?access_token=`) out of a page URL.
 * `cleaned` is the URL to put back (path, the other parameters, hash), or
 * null when there was nothing to take out.
 */
export function takeTokenFromUrl(href: string): { token: string | null; cleaned: string | null } {
  const url = new URL(href);
  const p = url.searchParams;
  if (!p.has(TOKEN_PARAM) && !p.has(ACCESS_TOKEN_PARAM)) return { token: null, cleaned: null };
  const token = normalizeToken(p.get(TOKEN_PARAM)) ?? normalizeToken(p.get(ACCESS_TOKEN_PARAM));
  p.delete(TOKEN_PARAM);
  p.delete(ACCESS_TOKEN_PARAM);
  const search = p.toString();
  return { token, cleaned: url.pathname + (search ? "?" + search : "") + url.hash };
}

/** The part of the Storage interface used here (sessionStorage in the page, a fake in tests). */
export type TokenStorage = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/**
 * The token for this tab. Storage may be missing or throw (storage disabled,
 * sandboxed frames): the token is then kept in memory for the page's life.
 */
export class TokenStore {
  private mem: string | null = null;
  constructor(private readonly storage: TokenStorage | null) {
    try {
      this.mem = normalizeToken(storage?.getItem(TOKEN_STORAGE_KEY));
    } catch {
      /* no storage: memory only */
    }
  }
  get(): string | null {
    return this.mem;
  }
  set(token: string | null): void {
    this.mem = normalizeToken(token);
    try {
      if (this.mem) this.storage?.setItem(TOKEN_STORAGE_KEY, this.mem);
      else this.storage?.removeItem(TOKEN_STORAGE_KEY);
    } catch {
      /* memory only */
    }
  }
}

/** sessionStorage, or null where reading it throws. */
export function sessionStorageOrNull(): TokenStorage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** Request headers carrying the token (none without one). */
export function authHeaders(token: string | null | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** `url` with `access_token=TOKEN` added (unchanged without a token). */
export function withAccessToken(url: string, token: string | null | undefined): string {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set(ACCESS_TOKEN_PARAM, token);
  return u.toString();
}

/** How the server refused: no/unknown token, or a token without the read scope. */
export type AuthProblem = "unauthenticated" | "forbidden";

/** An HTTP status as an auth refusal (401 → unauthenticated, 403 → forbidden), else null. */
export function authProblemOfStatus(status: number): AuthProblem | null {
  return status === 401 ? "unauthenticated" : status === 403 ? "forbidden" : null;
}

/** What the page says about a refusal. */
export function authMessage(problem: AuthProblem, hadToken: boolean): string {
  if (problem === "forbidden") return "this token cannot read";
  return hadToken ? "this server needs a read token (the token given was not accepted)" : "this server needs a read token";
}
