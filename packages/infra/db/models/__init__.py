"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from packages.infra.db.models.chat import ChatSession, Message, PhaseTransition
from packages.infra.db.models.jobs import BacktestJob, JobChild, StressJob
from packages.infra.db.models.market_data import MarketDataImport, MarketDataset, MarketDataSyncJob
from packages.infra.db.models.outbox import OutboxMessage
from packages.infra.db.models.strategies import Strategy, StrategyRevision
from packages.infra.db.models.trading import (
    BrokerAccount,
    Deployment,
    DeploymentRun,
    Fill,
    Order,
    PnlSnapshot,
    Position,
    SignalEvent,
)
from packages.infra.db.models.users import RefreshToken, User, UserProfile

__all__ = [
    "BacktestJob",
    "BrokerAccount",
    "ChatSession",
    "Deployment",
    "DeploymentRun",
    "Fill",
    "JobChild",
    "MarketDataImport",
    "MarketDataSyncJob",
    "MarketDataset",
    "Message",
    "Order",
    "OutboxMessage",
    "PhaseTransition",
    "PnlSnapshot",
    "Position",
    "RefreshToken",
    "SignalEvent",
    "Strategy",
    "StrategyRevision",
    "StressJob",
    "User",
    "UserProfile",
]
