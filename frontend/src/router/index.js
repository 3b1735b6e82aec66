import { createRouter, createWebHistory } from 'vue-router'
import HomeView from '@/views/HomeView.vue'
import { useAuthStore } from '@/stores/auth'

const APP_NAME = 'Cloud Trade Copier'

// History mode: the API must answer unknown non-API paths with index.html
// (SPA fallback) so deep links like /channels/123 survive a reload.
// meta.auth: needs a session; meta.role: 'provider' | 'subscriber' narrows it further.
export const routes = [
  { path: '/', name: 'home', component: HomeView, meta: { title: 'Home' } },
  { path: '/login', name: 'login', component: () => import('@/views/LoginView.vue'), meta: { title: 'Sign in' } },
  { path: '/signup', name: 'signup', component: () => import('@/views/LoginView.vue'), meta: { title: 'Sign up' } },
  { path: '/channels', name: 'channels', component: () => import('@/views/ChannelsView.vue'), meta: { title: 'Channels' } },
  {
    path: '/channels/:id',
    name: 'channel',
    component: () => import('@/views/ChannelView.vue'),
    props: true,
    meta: { title: 'Channel' },
  },
  {
    path: '/channels/:id/settings',
    name: 'channel-settings',
    component: () => import('@/views/ChannelSettingsView.vue'),
    props: true,
    meta: { title: 'Channel settings', auth: true },
  },
  { path: '/my-channels', name: 'my-channels', component: () => import('@/views/MyChannelsView.vue'), meta: { title: 'My channels', auth: true } },
  { path: '/accounts', name: 'accounts', component: () => import('@/views/AccountsView.vue'), meta: { title: 'Broker accounts', auth: true } },
  { path: '/subscriptions', name: 'subscriptions', component: () => import('@/views/SubscriptionsView.vue'), meta: { title: 'Subscriptions', auth: true } },
  { path: '/notifications', name: 'notifications', component: () => import('@/views/NotificationsView.vue'), meta: { title: 'Notifications', auth: true } },
  { path: '/trades', name: 'trades', component: () => import('@/views/TradesView.vue'), meta: { title: 'Trades', auth: true } },
  {
    path: '/:pathMatch(.*)*',
    name: 'not-found',
    component: () => import('@/views/NotFoundView.vue'),
    meta: { title: 'Page not found' },
  },
]

export function createAppRouter(history = createWebHistory(import.meta.env.BASE_URL)) {
  const router = createRouter({
    history,
    routes,
    scrollBehavior(to, from, saved) {
      return saved || { top: 0 }
    },
  })
  router.beforeEach(async (to) => {
    if (!to.meta?.auth) return true
    const auth = useAuthStore()
    if (!(await auth.restore())) return { name: 'login', query: { next: to.fullPath } }
    return true
  })
  router.afterEach((to) => {
    if (typeof document !== 'undefined') {
      document.title = to.meta?.title ? `${to.meta.title} · ${APP_NAME}` : APP_NAME
    }
  })
  return router
}

export default createAppRouter
