// Accounts whose credentials the broker refused (apps/core/relink.py): the account says
// `status: "needs_relink"`; a subscription it paused says why in `paused_reason`, and the
// router's rejection of its orders says the same words.

export const RELINK_PREFIX = 'broker account needs re-linking'

/** The account's broker refused its credentials: its subscriptions are paused. */
export const needsRelink = (account) => account?.status === 'needs_relink'

/** A pause or a rejection caused by an account that needs re-linking. */
export const pausedForRelink = (reason) => typeof reason === 'string' && reason.startsWith(RELINK_PREFIX)
