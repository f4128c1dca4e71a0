/**
 * The cold-start baseline (infra/build.ts, the bench): the least a Fastify service behind @fastify/aws-lambda
 * does at init, one route and app.ready() at module load, bundled exactly as the service's Lambda is.
 */
import awsLambdaFastify from '@fastify/aws-lambda'
import Fastify from 'fastify'

const app = Fastify()
app.get('/health', async () => ({ status: 'ok' }))
export const handler = awsLambdaFastify(app)
await app.ready()
