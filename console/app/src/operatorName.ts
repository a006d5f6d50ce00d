import { useState } from 'preact/hooks';

const key = 'troupe-console-operator';

/** The name the operator gave the page, kept in localStorage; sent as `by` with every control. */
export function useOperatorName(): [string, (name: string) => void] {
  const [name, setName] = useState(() => localStorage.getItem(key) ?? '');
  const save = (next: string) => {
    setName(next);
    if (next.trim() === '') localStorage.removeItem(key);
    else localStorage.setItem(key, next);
  };
  return [name, save];
}
