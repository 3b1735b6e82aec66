import { createApp } from 'vue'
import { createPinia } from 'pinia'

import 'bootstrap/dist/css/bootstrap.min.css'
import './styles.css'

import App from './App.vue'
import { createAppRouter } from './router'
import { startTheme } from './lib/theme'

// Before mounting, so the first paint is already in the chosen theme.
startTheme()

const app = createApp(App)
app.use(createPinia())
app.use(createAppRouter())
app.mount('#app')
