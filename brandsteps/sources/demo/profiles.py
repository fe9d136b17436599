"""The operator's own import profiles the demo writes to configs/imports/, for reports no built-in profile knows."""

from __future__ import annotations

# The operator's own profiles (README "Imports": configs/imports/<name>.yaml) for the reports no built-in profile
# describes; their headers are the demo files'. A real export is mapped the same way, once.
USER_PROFILES: dict[str, str] = {
    "live-room": """\
# 直播 live-room export (demo): one row per 快手ID and day.
description: 直播 live-room export, one row per 快手ID and day
match: [日期, 快手ID, 直播时长(分钟)]
date: 日期
account: 快手ID
columns:
  live_minutes: {header: 直播时长(分钟), unit: minute}
  watch_minutes: {header: 观看总时长, unit: second}   # the file's header says (秒) as well
  followers_new: {header: 新增粉丝}
""",
    "traffic": """\
# 流量来源 traffic-source export (demo): visitors by source, one row per shop (店铺ID) and day.
description: 流量来源 visitors by source, one row per 店铺ID and day
match: [日期, 店铺ID, 私域访客数]
date: 日期
account: 店铺ID
columns:
  uv_private: {header: 私域访客数}            # 关注页 and fan groups: the private domain
  uv_public_organic: {header: 公域自然访客数}
  uv_public_paid: {header: 公域付费访客数}
""",
    "customers": """\
# 客户分析 customers export (demo): new and returning buyers, one row per 店铺ID and day.
description: 客户分析 new and returning buyers, one row per 店铺ID and day
match: [日期, 店铺ID, 老买家数]
date: 日期
account: 店铺ID
columns:
  returning_buyers: {header: 老买家数}
""",
    "service": """\
# 店铺服务 service export (demo): orders shipped within 48 hours and the store rating, one row per 店铺ID and day.
description: 店铺服务 48-hour shipping and 店铺体验分, one row per 店铺ID and day
match: [日期, 店铺ID, 48小时发货订单数]
date: 日期
account: 店铺ID
columns:
  orders_shipped_48h: {header: 48小时发货订单数}
  store_rating: {header: 店铺体验分, aggregate: last}   # a score, not a flow: never added up
""",
    "affiliates": """\
# 快分销 数据概览 affiliate overview (demo): 达人 with orders, one row per 店铺ID and day.
description: 快分销 数据概览, selling 达人 per 店铺ID and day
match: [日期, 店铺ID, 出单达人数]
date: 日期
account: 店铺ID
columns:
  active_affiliates: {header: 出单达人数}
""",
}
