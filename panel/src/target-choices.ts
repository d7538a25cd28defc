import { useEffect, useState } from 'preact/hooks';
import { ApiClient } from './api-client';
import type { Answer } from './api-shapes';
import type { Session } from './session';

export type TargetList = Answer<'listTargets'>;
export type TargetChoices = Answer<'getTargetChoices'>;

/** The configured targets (names, kinds, the default), read once per session. */
export function useTargets(session: Session): TargetList | undefined {
  const [targets, setTargets] = useState<TargetList>();
  useEffect(() => {
    session.api.get<TargetList>('/targets').then(setTargets, () => setTargets(undefined));
  }, [session]);
  return targets;
}

/**
 * What the project may choose from in the target (flavors, volume types, networks, zones), asked of the API whenever
 * the target or project changes. A list the answer leaves out is one the target does not restrict: typed in.
 */
export function useTargetChoices(session: Session, target: string | undefined, project: string): { choices?: TargetChoices; error?: unknown } {
  const [state, setState] = useState<{ choices?: TargetChoices; error?: unknown }>({});
  useEffect(() => {
    if (!target || !project) return setState({});
    let stop = false;
    setState({});
    session.api
      .get<TargetChoices>(ApiClient.path('/targets/:name/choices', { name: target }), { project })
      .then((choices) => !stop && setState({ choices }))
      .catch((error) => !stop && setState({ error }));
    return () => void (stop = true);
  }, [session, target, project]);
  return state;
}
