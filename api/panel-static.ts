import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { HttpProblem } from './problem';

/** Where `npm run build:panel` (and the setup script) put the Migration Panel's built files. */
const PANEL_DIST_DIR = path.join(__dirname, '..', 'panel', 'dist');

/**
 * The panel runs only its own files: its script and stylesheet from this origin, its calls to this API. No inline
 * script, nothing from elsewhere, not framed by another site.
 */
const PANEL_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The Migration Panel, served by the API process: its page at `/` and its assets under `/panel/`. It is a client of
 * the public API like the CLI; it navigates with the URL's fragment (`/#/migrations/<id>`), so no path of its own
 * shadows an API route. Not built: `/` says how to build it instead of failing silently.
 */
export function panelRouter(dir = PANEL_DIST_DIR): express.Router {
  const router = express.Router();
  const security = (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', PANEL_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  };
  const built = () => existsSync(path.join(dir, 'index.html'));
  router.get('/', security, (_req, res, next) => {
    if (!built()) return next(new HttpProblem('not-found', 'the Migration Panel is not built here: run `npm run build:panel` (the setup script builds it)'));
    // The page is small and names its assets by content hash; it is fetched fresh so a new build is picked up.
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path.join(dir, 'index.html'));
  });
  router.use('/panel', security, express.static(dir, { index: false, fallthrough: true, immutable: true, maxAge: '1y' }));
  return router;
}
