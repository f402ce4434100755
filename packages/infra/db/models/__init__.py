"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from packages.infra.db.models.chat import ChatSession, Message, PhaseTransition
from packages.infra.db.models.jobs import BacktestJob, JobChild, StressJob
from packages.infra.db.models.market_data import MarketDataImport, MarketDataset, MarketDataSyncJob
from packages.infra.db.models.outbox import OutboxMessage
from packages.infra.db.models.strategies import Strategy, StrategyRevision
from packages.infra.db.models.trading import (
    AuditRecord,
    BrokerAccount,
    Confirmation,
    Deployment,
    DeploymentEvent,
    DeploymentTransition,
    Fill,
    KillSwitch,
    LedgerEntry,
    ManualAction,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
    SignalEvent,
)
from packages.infra.db.models.users import RefreshToken, User, UserProfile

__all__ = [
    "AuditRecord",
    "BacktestJob",
    "BrokerAccount",
    "ChatSession",
    "Confirmation",
    "Deployment",
    "DeploymentEvent",
    "DeploymentTransition",
    "Fill",
    "JobChild",
    "KillSwitch",
    "LedgerEntry",
    "ManualAction",
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
    "RiskDecision",
    "SignalEvent",
    "Strategy",
    "StrategyRevision",
    "StressJob",
    "User",
    "UserProfile",
]
