"""The Chinese labels the domain layer gives to people (roles, kinds, statuses, campaign processes and their
parameters), listed so that ``pybabel extract`` puts them in the catalogues.

Pages translate them with the ``term`` filter (web/i18n.py); tests/web/test_i18n.py checks that this
list still covers every label of the domain modules named below.
"""
from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - the marker name pybabel extracts by default
    """Mark ``text`` for extraction; it is translated where it is shown."""
    return text


TERMS = (
    # workflows.roles.ROLE_NAMES_ZH
    N_("组织者"), N_("协调员"), N_("核查员"), N_("管理员"), N_("团干部"), N_("青年"),
    # workflows.organisations.KIND_NAMES_ZH
    N_("团省委"), N_("团市委"), N_("企业团委"), N_("高校团委"), N_("省直机关团工委"), N_("县级团委"), N_("基层团委"), N_("团总支"),
    N_("团支部"),
    # workflows.roster.CADRE_KIND_NAMES_ZH
    N_("专职"), N_("挂职"), N_("兼职"),
    # workflows.spot_checks.KIND_NAMES_ZH (activity kinds)
    N_("为青年办一件实事"), N_("讲一次团课"), N_("开展一次谈心"), N_("组织或参加一次志愿服务"), N_("组织或参加一次文体活动"), N_("机关开放日"),
    N_("共青团与青年面对面"), N_("集中志愿服务"), N_("“1+100”工作分享"), N_("自主设计的集体活动"),
    # workflows.campaigns.STATUS_NAMES
    N_("待发起"), N_("发起中"), N_("已发起"), N_("已撤销"),
    # workflows.campaign_processes.TARGET_KIND_NAMES
    N_("每名团干部"), N_("每个团的领导机关"), N_("每个团市委（地市级单位）"), N_("每个县级团委"),
    # workflows.campaign_dashboard.INSTANCE_STATUS_NAMES and PEOPLE_FILTERS
    N_("进行中"), N_("已完成"), N_("出错"), N_("未发起"), N_("全部"), N_("有逾期任务"),
    # workflows.wish_pool.SCOPES, SHOWS and REASONS_ZH
    N_("本级心愿池"), N_("本级及下级心愿池"), N_("待认领"), N_("我认领的"), N_("已逾期"), N_("超出团干部个人能力范围"),
    N_("团干部3天内未回复"), N_("团干部答应后14天内未能实现"), N_("团干部经努力仍无法实现"),
    # workflows.campaign_processes.PROCESSES: names, parameter titles and descriptions
    N_("十九大精神宣讲"), N_("截止时间"), N_("团干部记录宣讲的截止时间"), N_("提醒时间"), N_("截止前提醒的时间（默认截止前3天）"), N_("主题"),
    N_("活动主题（可选），随流程数据下发"), N_("集中服务青年月"), N_("团干部记录服务的截止时间"), N_("截止前提醒的时间（默认截止前7天）"),
    N_("“一学一做”教育实践"), N_("选择联系点截止时间"), N_("5月上旬选定联系指导的基层团委和团支部的截止时间"), N_("选择提醒时间"),
    N_("选择联系点前提醒的时间（默认截止前3天）"), N_("结束时间"), N_("教育实践结束、未完成事项记为未完成的时间"), N_("“五个一”周期考核"),
    N_("周期开始日"), N_("考核周期的第一天"), N_("周期结束日"), N_("考核周期的最后一天"), N_("检查时间"),
    N_("周期结束后检查是否达标的时间（默认结束次日9时）"), N_("团的领导机关开放日"), N_("季度截止时间"), N_("本季度举办开放日的截止时间"),
    N_("季度末前提醒的时间（默认截止前10天）"), N_("“1+100”季度交流会与“五个一”季度报告"), N_("报告截止时间"), N_("季度最后一个月20日前报送团省委"),
    N_("报告截止前提醒的时间（默认截止前5天）"), N_("交流会截止时间"), N_("本季度召开“1+100”经验交流会的截止时间"), N_("“最美青春故事”分享"),
    N_("县级推荐截止时间"), N_("县级团委评选上报团市委的截止时间"), N_("市级推荐截止时间"), N_("团市委评选上报团省委的截止时间"), N_("省级评选截止时间"),
    N_("团省委评选发布的截止时间"),
)
