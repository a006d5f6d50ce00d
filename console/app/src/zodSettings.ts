import * as z from 'zod';

// The console's Content-Security-Policy allows no eval. Zod probes `new Function` when it builds an
// object schema (the browser reports the refused probe as an error) unless told not to compile
// parsers. Its own module, imported first by main.tsx: the setting must precede every schema,
// consoleApi.ts's included.
z.config({ jitless: true });
