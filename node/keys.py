"""Typed application keys, in one place."""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.fetch import GuardedClient
from node.blocks import DomainBlocks
from node.config import Config
from node.graph import RdfIndex
from node.ratelimit import RateLimiter
from node.remote import Remote
from node.service import Directory
from node.sparql.endpoint import Endpoint
from node.storage.batch import GroupInsert
from node.workers.delivery import Deliverer
from node.workers.inbox import InboxWorker
from node.workers.indexer import Indexer
from node.workers.sync import Syncer

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
INDEX = web.AppKey("index", RdfIndex)
INDEXER = web.AppKey("indexer", Indexer)
DIRECTORY = web.AppKey("directory", Directory)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
TASKS = web.AppKey("tasks", list[asyncio.Task[None]])
CLIENT = web.AppKey("client", GuardedClient)
REMOTE = web.AppKey("remote", Remote)
DELIVERER = web.AppKey("deliverer", Deliverer)
INBOX_WORKER = web.AppKey("inbox_worker", InboxWorker)
LIMITER = web.AppKey("limiter", RateLimiter)
BLOCKS = web.AppKey("blocks", DomainBlocks)
INBOX_WRITER = web.AppKey("inbox_writer", GroupInsert)
SYNCER = web.AppKey("syncer", Syncer)
SPARQL = web.AppKey("sparql", Endpoint)
