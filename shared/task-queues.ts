/** The task queue migrations run on unless VMIGRATE_TASK_QUEUE says otherwise. */
export const DEFAULT_TASK_QUEUE = 'vmigrate';
