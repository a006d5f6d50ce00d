import './zodSettings.ts';
import { render } from 'preact';
import { adoptTokenFromAddress } from './api.ts';
import { App } from './app.tsx';
import { ErrorBoundary } from './errorBoundary.tsx';
import './styles.css';

adoptTokenFromAddress();
render(
  <ErrorBoundary what="The console">
    <App />
  </ErrorBoundary>,
  document.getElementById('app')!,
);
